import { isUtf8 } from 'node:buffer';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { invalid, type FieldError } from '../errors.js';
import { UUID } from '../infra/uuid.js';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM interop.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** The schema keyword that lower-cases a string field as the request is validated. */
export const LOWERCASE = 'x-lowercase';

function makeAjv(coerceTypes: boolean | 'array'): Ajv {
  const ajv = new Ajv({
    // Unknown fields are rejected, never silently dropped: no mass assignment, no typo ignored.
    removeAdditional: false,
    useDefaults: true,
    coerceTypes,
    allErrors: true,
    strict: false,
  });
  addFormats(ajv);
  // ajv-formats' "uuid" also passes "urn:uuid:…", which Postgres cannot cast: a 500 on every id.
  ajv.addFormat('uuid', UUID);
  // Ids are compared as text all through the rules (a task depending on itself, a member leaving
  // versus being removed), so an id is lower-cased once, here, as it arrives, and every comparison
  // after sees the spelling Postgres returns. The schemas mark such fields (see Id in schemas.ts).
  ajv.addKeyword({
    keyword: LOWERCASE,
    type: 'string',
    modifying: true,
    schemaType: 'boolean',
    errors: false,
    validate: (
      on: boolean,
      data: string,
      _parent: unknown,
      at?: { parentData: unknown; parentDataProperty: string | number },
    ) => {
      if (on && at?.parentData && typeof at.parentData === 'object')
        (at.parentData as Record<string | number, unknown>)[at.parentDataProperty] = data.toLowerCase();
      return true;
    },
  });
  return ajv;
}

// How deep the text check looks. Bodies are bounded by their schemas long before this (the task
// tree is the deepest, at a few levels); anything deeper is refused by validation anyway.
const MAX_TEXT_DEPTH = 64;
// In a /u regex, a surrogate pair is one code point: only an unpaired half matches \p{Cs}.
const UNPAIRED_SURROGATE = /\p{Cs}/u;
const wellFormed = (text: string) => !UNPAIRED_SURROGATE.test(text);

/**
 * Text Postgres cannot store faithfully: NUL (text and jsonb refuse it, which surfaced as a 500)
 * and unpaired UTF-16 surrogates (the driver would silently store U+FFFD instead of what was sent).
 * Lists each string, or object key, holding either, by its path.
 */
export function unstorableText(value: unknown, path: string, out: FieldError[] = [], depth = 0): FieldError[] {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) out.push({ path, message: 'must not contain NUL (\\u0000) characters' });
    else if (!wellFormed(value)) out.push({ path, message: 'must be well-formed Unicode (no unpaired surrogates)' });
  } else if (value !== null && typeof value === 'object' && depth < MAX_TEXT_DEPTH) {
    for (const [key, item] of Object.entries(value)) {
      const at = `${path}/${key.replaceAll('\u0000', '\\u0000')}`;
      if (key.includes('\u0000') || !wellFormed(key))
        out.push({ path: at, message: 'field names must be well-formed text without NUL' });
      else unstorableText(item, at, out, depth + 1);
    }
  }
  return out;
}

// The most fields an object of any request has, and the most items of any list (a task forest's
// 5,000), with room to spare. Larger shapes are refused before the schema sees them: the schema
// reports every problem it finds (allErrors), and a 1 MiB body of 90,000 unknown fields made
// 90,000 of them, a 5 MB answer and most of a second of a blocked event loop, before any budget
// counted the request.
export const MAX_OBJECT_FIELDS = 100;
export const MAX_LIST_ITEMS = 5000;

/** The first object or list of `value` bigger than any request has, by its path, or null. */
export function oversizedShape(value: unknown, path: string, depth = 0): FieldError | null {
  if (value === null || typeof value !== 'object' || depth >= MAX_TEXT_DEPTH) return null;
  if (Array.isArray(value)) {
    if (value.length > MAX_LIST_ITEMS) return { path, message: `has more than ${MAX_LIST_ITEMS} items` };
    for (const [i, item] of value.entries()) {
      const found = oversizedShape(item, `${path}/${i}`, depth + 1);
      if (found) return found;
    }
    return null;
  }
  // Counted up to the limit only: listing a huge object's fields (Object.entries) costs more than
  // parsing it did.
  let fields = 0;
  for (const key in value) {
    if (++fields > MAX_OBJECT_FIELDS) return { path, message: `has more than ${MAX_OBJECT_FIELDS} fields` };
    const found = oversizedShape((value as Record<string, unknown>)[key], `${path}/${key}`, depth + 1);
    if (found) return found;
  }
  return null;
}

/** At most this many of a refused request's problems are reported (its first ones). */
export const MAX_REPORTED_ERRORS = 20;

/**
 * Bodies are JSON and must carry real types ("5" is not a number); query strings and path
 * parameters are text by nature, so they are coerced to the schema's types.
 */
export function registerValidation(app: FastifyInstance): void {
  const bodyAjv = makeAjv(false);
  const textAjv = makeAjv('array');
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? bodyAjv.compile(schema) : textAjv.compile(schema),
  );
  // Bodies are JSON only. Fastify parses text/plain by default, which turned a JSON body sent
  // with the wrong type into a confusing "body must be object"; it is a 415 like any other type.
  app.removeContentTypeParser('text/plain');

  // JSON must be UTF-8 (RFC 8259). Fastify decodes bodies leniently, turning invalid bytes into
  // U+FFFD, so a client's corrupted text would be stored as something it never sent: refuse it.
  // Parsing itself stays Fastify's (prototype-poisoning protection included).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    if (!isUtf8(bytes)) {
      done(invalid('invalid_json', 'The body is not valid UTF-8.'), undefined);
      return;
    }
    parseJson(request, bytes.toString('utf8'), done);
  });

  // Fastify joins every schema error into the error's message; the answer lists them itself
  // (at most MAX_REPORTED_ERRORS), so the message need not carry them.
  app.setSchemaErrorFormatter((errors, dataVar) => new Error(`${dataVar} has ${errors.length} invalid fields`));

  app.addHook('preValidation', async (request) => {
    const shape = oversizedShape(request.query, 'querystring') ?? oversizedShape(request.body, 'body');
    if (shape) throw invalid('invalid_request', 'The request is larger in shape than any this service takes.', [shape]);
    const errors = [
      ...unstorableText(request.params, 'params'),
      ...unstorableText(request.query, 'querystring'),
      ...unstorableText(request.body, 'body'),
    ];
    if (errors.length)
      throw invalid(
        'invalid_request',
        'The request has invalid fields; see errors.',
        errors.slice(0, MAX_REPORTED_ERRORS),
      );
  });
}
