import { randomUUID } from 'node:crypto';
import t from 'tap';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { buildTestApp, call, registerUser } from '../helper.js';

// What a client developer relies on in /openapi.json, checked on every operation the document has
// (so routes added later are covered without touching this file): a unique operationId, an example
// for every request body that its schema accepts, the Idempotency-Key header exactly where the
// service honours it, and a 429 exactly where a rate limit applies. The last two are checked by
// what the service does, not by reading its configuration.

type Json = Record<string, any>;
type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';

interface Operation {
  method: Method;
  path: string;
  op: Json;
}

async function documentOf(app: FastifyInstance): Promise<Json> {
  const res = await call(app, 'GET', '/openapi.json');
  if (res.status !== 200) throw new Error(`openapi.json answered ${res.status}`);
  return res.body;
}

function operationsOf(doc: Json): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const method of ['get', 'post', 'patch', 'delete', 'put'] as const) {
      if (item[method]) out.push({ method: method.toUpperCase() as Method, path, op: item[method] });
    }
  }
  return out;
}

const name = (o: Operation) => `${o.method} ${o.path}`;

/** The operation's URL with every path parameter filled with a value its schema accepts. */
function urlOf(o: Operation): string {
  return o.path.replace(/\{([^}]+)\}/g, (_m, param: string) => {
    const schema = (o.op.parameters ?? []).find((p: Json) => p.in === 'path' && p.name === param)?.schema ?? {};
    return schema.format === 'uuid' ? randomUUID() : 'x';
  });
}

const bodySchemaOf = (o: Operation): Json | undefined => o.op.requestBody?.content?.['application/json']?.schema;

/** The examples of a request body, wherever @fastify/swagger put them (schema or media type). */
function examplesOf(o: Operation): unknown[] {
  const media = o.op.requestBody?.content?.['application/json'] ?? {};
  return [
    ...(bodySchemaOf(o)?.examples ?? []),
    ...(media.example === undefined ? [] : [media.example]),
    ...Object.values((media.examples ?? {}) as Json).map((e) => e.value),
  ];
}

const declaresIdempotencyKey = (o: Operation) =>
  (o.op.parameters ?? []).some((p: Json) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key');

const declares429 = (o: Operation) => o.op.responses?.['429'] !== undefined;

/** Sends the operation with its first example body (if it takes one) and the given headers. */
function send(app: FastifyInstance, o: Operation, token: string, headers: Record<string, string> = {}) {
  const body = o.op.requestBody ? (examplesOf(o)[0] ?? {}) : undefined;
  return call(app, o.method, urlOf(o), { token, body, headers });
}

// One app for the checks that change nothing a later check reads; the 429 check needs budgets of its own.
const { app } = await buildTestApp(t);

t.test('every operation has a unique, readable operationId', async (t) => {
  const operations = operationsOf(await documentOf(app));
  t.ok(operations.length > 60, `${operations.length} operations`);
  const seen = new Map<string, string>();
  for (const o of operations) {
    const id = o.op.operationId;
    t.match(id, /^[a-z][A-Za-z0-9]+$/, `${name(o)} has a camelCase operationId`);
    t.notOk(seen.has(id), `${name(o)}: operationId ${id} is unique${seen.has(id) ? ` (also ${seen.get(id)})` : ''}`);
    seen.set(id, name(o));
  }
});

t.test('every request body has an example, and each example is valid for its schema', async (t) => {
  const doc = await documentOf(app);
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  for (const [id, schema] of Object.entries(doc.components?.schemas ?? {})) ajv.addSchema(schema as Json, id);
  for (const o of operationsOf(doc).filter((o) => o.op.requestBody)) {
    const examples = examplesOf(o);
    t.ok(examples.length > 0, `${name(o)} has a request body example`);
    const validate = ajv.compile({ ...bodySchemaOf(o), examples: undefined });
    for (const example of examples) {
      t.ok(validate(example), `${name(o)} example ${JSON.stringify(example)}: ${ajv.errorsText(validate.errors)}`);
    }
  }
});

t.test('Idempotency-Key is declared exactly on the operations that honour it', async (t) => {
  const operations = operationsOf(await documentOf(app));
  const user = await registerUser(app);
  // A key over 255 characters: a route that honours the header refuses it before doing anything.
  const badKey = 'k'.repeat(300);
  const honouring: string[] = [];
  for (const o of operations) {
    const res = await send(app, o, user.token, { 'idempotency-key': badKey });
    const honours = res.body?.code === 'invalid_idempotency_key';
    if (honours) honouring.push(o.op.operationId);
    t.equal(
      declaresIdempotencyKey(o),
      honours,
      `${name(o)}: declared ${declaresIdempotencyKey(o)}, honoured ${honours}`,
    );
  }
  // The creating POSTs of the contract, at least.
  for (const id of ['createCircle', 'createProject', 'claimTask', 'claimNextTask', 'submitWork', 'settleProject']) {
    t.ok(honouring.includes(id), `${id} honours Idempotency-Key`);
  }
});

t.test('429 is documented exactly on the operations a rate limit applies to', async (t) => {
  // Budgets of one request a minute: spent below, after which every limited route answers 429.
  const { app } = await buildTestApp(t, { RATE_LIMIT_MAX: '1', AUTH_RATE_LIMIT_MAX: '1' });
  const operations = operationsOf(await documentOf(app));
  const user = await registerUser(app); // spends the auth budget (per address)
  t.equal((await call(app, 'GET', '/v1/me', { token: user.token })).status, 200); // the user's budget
  await call(app, 'GET', '/problems'); // the address's budget, for routes without a user
  for (const o of operations) {
    const res = await send(app, o, user.token);
    t.equal(declares429(o), res.status === 429, `${name(o)}: documented ${declares429(o)}, answered ${res.status}`);
    if (declares429(o)) {
      t.equal(
        o.op.responses['429'].content?.['application/problem+json']?.schema?.$ref,
        '#/components/schemas/Problem',
      );
    }
  }
  t.ok(operations.filter((o) => o.path.startsWith('/v1/')).every(declares429), 'every /v1 operation is limited');
});

t.test('every problem type resolves to its page on the service', async (t) => {
  const doc = await documentOf(app);
  const codes: string[] = doc.components.schemas.Problem.properties.code.enum;
  t.ok(codes.length > 50, `${codes.length} codes`);
  for (const code of codes) {
    const page = await call(app, 'GET', `/problems/${code}`);
    t.equal(page.status, 200, code);
    t.match(page.type, /^text\/html/);
    t.match(page.body, `<code>${code}</code>`);
    t.match(page.body, 'What to do');
  }
  const index = await call(app, 'GET', '/problems');
  t.equal(index.status, 200);
  for (const code of codes) t.match(index.body, `href="/problems/${code}"`);

  // A real problem's type, resolved against the request's URL, is its code's page.
  const problem = await call(app, 'GET', '/v1/nowhere');
  t.equal(problem.body.type, '/problems/route_not_found');
  const resolved = new URL(problem.body.type, 'http://localhost/v1/nowhere');
  const page = await call(app, 'GET', resolved.pathname);
  t.equal(page.status, 200);
  t.match(page.body, 'No route answers this method and path.');

  const unknown = await call(app, 'GET', '/problems/no_such_code');
  t.equal(unknown.status, 404);
  t.equal(unknown.body.code, 'problem_type_not_found');
  t.equal(unknown.body.type, '/problems/problem_type_not_found');
});
