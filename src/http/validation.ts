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

  app.addHook('preValidation', async (request) => {
    const errors = [
      ...unstorableText(request.params, 'params'),
      ...unstorableText(request.query, 'querystring'),
      ...unstorableText(request.body, 'body'),
    ];
    if (errors.length) throw invalid('invalid_request', 'The request has invalid fields; see errors.', errors);
  });
}
