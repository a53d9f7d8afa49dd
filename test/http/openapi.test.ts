import t from 'tap';
import { Validator } from '@seriousme/openapi-schema-validator';
import { buildTestApp, call } from '../helper.js';

// The OpenAPI document is valid and explains itself: every field of every schema has a description.

type Schema = Record<string, unknown>;

/** Every property (at any depth) that lacks a description, as JSON-pointer-like paths. */
function undescribed(
  schema: unknown,
  at: string,
  components: Record<string, Schema>,
  out: string[],
  seen = new Set<unknown>(),
): string[] {
  if (!schema || typeof schema !== 'object' || seen.has(schema)) return out;
  seen.add(schema);
  const s = schema as Schema;
  const describedRef = (value: Schema) => {
    const ref = typeof value.$ref === 'string' ? value.$ref.replace('#/components/schemas/', '') : undefined;
    return ref !== undefined && typeof components[ref]?.description === 'string';
  };
  if (s.properties && typeof s.properties === 'object') {
    for (const [name, value] of Object.entries(s.properties as Record<string, Schema>)) {
      if (typeof value?.description !== 'string' || value.description.trim() === '') {
        if (!describedRef(value)) out.push(`${at}/${name}`);
      }
      undescribed(value, `${at}/${name}`, components, out, seen);
    }
  }
  for (const key of ['items', 'additionalProperties', 'not']) {
    if (s[key] && typeof s[key] === 'object') undescribed(s[key], `${at}/${key}`, components, out, seen);
  }
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    if (!Array.isArray(s[key])) continue;
    for (const [i, sub] of (s[key] as unknown[]).entries())
      undescribed(sub, `${at}/${key}/${i}`, components, out, seen);
  }
  return out;
}

t.test('GET /openapi.json is a valid OpenAPI 3.1 document covering the routes', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await call(app, 'GET', '/openapi.json');
  t.equal(res.status, 200);
  t.match(res.type, /^application\/json/);
  const doc = res.body;

  const validator = new Validator();
  const result = await validator.validate(doc);
  t.ok(result.valid, JSON.stringify(result.errors, null, 2));
  t.equal(validator.version, '3.1');

  for (const path of [
    '/v1/auth/register',
    '/v1/auth/login',
    '/v1/auth/refresh',
    '/v1/me',
    '/v1/circles',
    '/v1/circles/{circleId}',
    '/v1/circles/{circleId}/invites',
    '/v1/circles/{circleId}/members',
    '/v1/circles/{circleId}/members/{userId}',
    '/healthz',
    '/readyz',
  ]) {
    t.ok(doc.paths[path], `documents ${path}`);
  }
  t.notOk(doc.paths['/openapi.json'], 'the document itself is hidden');
  t.ok(doc.components.schemas.Problem, 'problem details are a shared component');
  t.same(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  t.same(doc.paths['/v1/auth/login'].post.security, [], 'login needs no token');
  t.notOk(doc.paths['/v1/me'].get.security, 'other routes inherit the bearer requirement');
  t.ok(doc.paths['/v1/circles'].post.responses['422'], 'idempotent routes document 422');
  t.same(
    doc.paths['/v1/circles/{circleId}'].get.responses['404'].content,
    {
      'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } },
    },
    'errors are documented under the media type they are sent with',
  );
});

t.test('the description check finds undescribed properties at any depth', async (t) => {
  const schema = {
    properties: {
      a: { type: 'string' },
      b: { type: 'object', description: 'b', properties: { c: { type: 'integer' } } },
      d: { type: 'array', description: 'd', items: { type: 'object', properties: { e: { type: 'string' } } } },
      f: { $ref: '#/components/schemas/F' },
    },
  };
  t.same(undescribed(schema, '#', { F: { description: 'f' } }, []), ['#/a', '#/b/c', '#/d/items/e']);
});

t.test('every property of every request and response schema has a description', async (t) => {
  const { app } = await buildTestApp(t);
  const doc = (await call(app, 'GET', '/openapi.json')).body;
  const components = doc.components.schemas as Record<string, Schema>;
  const missing: string[] = [];
  for (const [name, schema] of Object.entries(components))
    undescribed(schema, `#/components/schemas/${name}`, components, missing);

  let operations = 0;
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Schema>>)) {
    for (const [method, op] of Object.entries(item)) {
      operations++;
      const where = `${method.toUpperCase()} ${path}`;
      t.ok(typeof op.summary === 'string' && op.summary, `${where} has a summary`);
      for (const param of (op.parameters ?? []) as Schema[]) {
        if (typeof param.description !== 'string' && typeof (param.schema as Schema)?.description !== 'string') {
          missing.push(`${where} parameter ${String(param.name)}`);
        }
      }
      const body = (op.requestBody as { content?: Record<string, { schema: Schema }> } | undefined)?.content;
      for (const [type, media] of Object.entries(body ?? {}))
        undescribed(media.schema, `${where} request ${type}`, components, missing);
      for (const [status, response] of Object.entries((op.responses ?? {}) as Record<string, Schema>)) {
        if (typeof response.description !== 'string' || !response.description)
          missing.push(`${where} response ${status}`);
        for (const [type, media] of Object.entries((response.content ?? {}) as Record<string, { schema: Schema }>)) {
          undescribed(media.schema, `${where} ${status} ${type}`, components, missing);
        }
      }
    }
  }
  t.ok(operations >= 13, `walked ${operations} operations`);
  t.same(missing, [], 'no property without a description');
});

t.test('the docs page is served', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/docs/' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /text\/html/);
});
