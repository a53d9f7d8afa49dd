import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ERROR_CODES } from '../../src/error-codes.js';
import { statusOfCode } from '../../src/http/problem-pages.js';

// The registry of error codes is complete and has no dead entries. The compiler already refuses a
// code outside the registry wherever errors.ts's constructors are used; this reads the sources for
// every other way a code is written (the HTTP layer's own codes, not-found subjects), so a code
// typed as a plain string somewhere cannot slip past either.

async function sources(dir: string): Promise<{ file: string; text: string }[]> {
  const out: { file: string; text: string }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.d.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    if (file.includes('src/client/') || file.endsWith('src/error-codes.ts')) continue;
    out.push({ file, text: await readFile(file, 'utf8') });
  }
  return out;
}

/** Every code the sources can emit, with where. */
function emittedCodes(files: { file: string; text: string }[]): Map<string, string> {
  const found = new Map<string, string>();
  const patterns: [RegExp, (m: RegExpExecArray) => string][] = [
    // invalid('code', …), conflict('code', …) and the other constructors
    [/\b(?:invalid|unauthorized|conflict|unprocessable)\(\s*'([a-z_]+)'/g, (m) => m[1]!],
    // new DomainError('kind', 'code', …)
    [/new DomainError\(\s*'[a-z_]+',\s*'([a-z_]+)'/g, (m) => m[1]!],
    // notFound('task') and authorize(row, 'task', …) answer task_not_found
    [/\bnotFound\(\s*'([a-z_]+)'/g, (m) => `${m[1]!}_not_found`],
    [/\bauthorize\([^;]*?\),\s*'([a-z_]+)'\s*[,)]/g, (m) => `${m[1]!}_not_found`],
    // the HTTP layer's own: [413, 'body_too_large'], code: 'route_not_found'
    [/\[\s*\d{3},\s*'([a-z_]+)'\s*\]/g, (m) => m[1]!],
    [/\bcode: '([a-z_]+)'/g, (m) => m[1]!],
  ];
  for (const { file, text } of files) {
    for (const [re, codeOf] of patterns) {
      for (let m = re.exec(text); m; m = re.exec(text)) found.set(codeOf(m), file);
    }
  }
  return found;
}

t.test('every code the service can emit is in the registry', async (t) => {
  const emitted = emittedCodes(await sources('src'));
  t.ok(emitted.size > 60, `${emitted.size} codes found in src`);
  for (const [code, file] of emitted)
    t.ok(Object.hasOwn(ERROR_CODES, code), `${code} (${file}) is in src/error-codes.ts`);
});

t.test('every registry entry is emitted somewhere and explains itself', async (t) => {
  const files = await sources('src');
  const emitted = emittedCodes(files);
  const all = files.map((f) => f.text).join('\n');
  for (const [code, entry] of Object.entries(ERROR_CODES)) {
    // A code built from a variable (problem_type in the pages, dependency-injected subjects) still
    // appears as its literal or its subject somewhere.
    const subject = code.endsWith('_not_found') ? `'${code.slice(0, -'_not_found'.length)}'` : undefined;
    const used = emitted.has(code) || all.includes(`'${code}'`) || (subject !== undefined && all.includes(subject));
    t.ok(used, `${code} is emitted somewhere in src`);
    t.ok(entry.summary.length > 10 && entry.summary.endsWith('.'), `${code} has a summary`);
    t.ok(entry.remedy.length > 5 && entry.remedy.endsWith('.'), `${code} has a remedy`);
    t.ok([400, 401, 403, 404, 409, 413, 414, 415, 422, 429, 500, 503].includes(statusOfCode(entry)), `${code} status`);
  }
});
