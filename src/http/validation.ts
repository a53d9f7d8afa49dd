import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM interop.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

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
  return ajv;
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
}
