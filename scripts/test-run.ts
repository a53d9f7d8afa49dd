// `npm test`: the whole suite through tap, configured in package.json ("tap"). When a test fails,
// its failed assertions are printed once more after the coverage report: a CI summary shows only
// the tail of a long log, and without this the one line that matters is hundreds of lines up.
// tap keeps each test file's TAP output under .tap/test-results; only files this run wrote are read.
//
//   npm test                      the whole suite
//   npm test -- test/claims       arguments go to tap
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const RESULTS = path.join(ROOT, '.tap', 'test-results');
const MAX_LINES = 300;

/**
 * Every `not ok` line of a TAP text, indentation removed, with the YAML block (the diff, the error,
 * the place) that follows a failed assertion; a failed subtest (its line ends in `# time=`) is only
 * named, since its own failures are listed above it.
 */
function failedAssertions(tap: string): string[] {
  const lines = tap.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const failed = /^(\s*)not ok \d+ - /.exec(line);
    if (!failed) continue;
    const indent = (failed[1] as string).length;
    out.push(line.slice(indent));
    if (/ # time=[\d.]+m?s$/.test(line) || lines[i + 1]?.trim() !== '---') continue;
    for (i++; i < lines.length; i++) {
      const yaml = lines[i] as string;
      out.push(`  ${yaml.slice(indent)}`);
      if (yaml.trim() === '...') break;
    }
  }
  return out;
}

function resultFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? resultFiles(full) : [full];
  });
}

const started = Date.now();
const run = spawnSync('tap', process.argv.slice(2), { cwd: ROOT, stdio: 'inherit' });
if (run.error) throw run.error;

if (run.status !== 0) {
  const report: string[] = [];
  for (const file of resultFiles(RESULTS)) {
    if (statSync(file).mtimeMs < started) continue;
    const failed = failedAssertions(readFileSync(file, 'utf8'));
    if (failed.length === 0) continue;
    report.push(`# ${path.relative(RESULTS, file).replace(/\.tap$/, '')}`, ...failed.map((l) => `  ${l}`));
  }
  if (report.length > 0) {
    console.log('\nFailed in this run (repeated from above):');
    console.log(report.slice(0, MAX_LINES).join('\n'));
    if (report.length > MAX_LINES) console.log(`  ... ${report.length - MAX_LINES} more lines above`);
  }
}
process.exitCode = run.status ?? 1;
