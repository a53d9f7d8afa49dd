import t from 'tap';
import { sql } from 'kysely';
import { buildTestApp, buildTestAppWith, call, isProblem, registerUser, type Reply } from '../helper.js';
import { backendPid, waitUntilBlockedBy } from '../lock-waits.js';

// Bad input of every kind gets a problem+json answer with a stable code, and changes nothing.

t.test('an unknown route is 404 route_not_found', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await call(app, 'GET', '/v1/nowhere?x=1');
  t.ok(isProblem(res, 404, 'route_not_found'));
  t.match(res.body, {
    type: '/problems/route_not_found',
    title: 'Not Found',
    detail: 'No route GET /v1/nowhere.',
  });
  t.ok(res.headers['x-request-id']);
  const wrongMethod = await call(app, 'PUT', '/v1/circles');
  t.ok(isProblem(wrongMethod, 404, 'route_not_found'));
});

t.test('malformed JSON is 400 invalid_json', async (t) => {
  const { app, db } = await buildTestApp(t);
  for (const payload of ['{"handle": "ann", ', '']) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      headers: { 'content-type': 'application/json' },
      payload,
    });
    t.equal(res.statusCode, 400, JSON.stringify(payload));
    t.match(res.headers['content-type'], /^application\/problem\+json/);
    t.equal(res.json().code, 'invalid_json');
  }
  t.equal((await db.selectFrom('users').select('id').execute()).length, 0);
});

t.test('a body over BODY_LIMIT_BYTES is 413 body_too_large', async (t) => {
  const { app, db } = await buildTestApp(t, { BODY_LIMIT_BYTES: '2048' });
  const user = await registerUser(app);
  const res = await call(app, 'POST', '/v1/circles', {
    token: user.token,
    body: { name: 'big', joinPolicy: 'open', description: 'x'.repeat(3000) },
  });
  t.ok(isProblem(res, 413, 'body_too_large'), JSON.stringify(res.body));
  t.equal((await db.selectFrom('circles').select('id').execute()).length, 0);
  const small = await call(app, 'POST', '/v1/circles', {
    token: user.token,
    body: { name: 'small', joinPolicy: 'open' },
  });
  t.equal(small.status, 201, 'bodies under the limit still work');
});

t.test('a content type other than JSON is 415', async (t) => {
  const { app } = await buildTestApp(t);
  const user = await registerUser(app);
  for (const type of [
    'text/plain',
    'application/x-www-form-urlencoded',
    'application/xml',
    'multipart/form-data; boundary=x',
  ]) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/circles',
      headers: { 'content-type': type, authorization: `Bearer ${user.token}` },
      payload: 'name=x&joinPolicy=open',
    });
    t.equal(res.statusCode, 415, type);
    t.equal(res.json().code, 'unsupported_media_type');
    t.match(res.headers['content-type'], /^application\/problem\+json/);
  }
  const noType = await app.inject({
    method: 'POST',
    url: '/v1/circles',
    headers: { authorization: `Bearer ${user.token}` },
    payload: '{"name":"x","joinPolicy":"open"}',
  });
  t.equal(noType.statusCode, 415, 'a body without a content type');
});

t.test('unknown fields are refused (no mass assignment) and types are not coerced', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);
  const extra = await call(app, 'POST', '/v1/circles', {
    token: user.token,
    body: { name: 'x', joinPolicy: 'open', ownerId: user.id, createdAt: '2020-01-01T00:00:00Z' },
  });
  t.ok(isProblem(extra, 400, 'invalid_request'));
  t.same(
    extra.body.errors.map((e: { path: string }) => e.path).sort(),
    ['body/createdAt', 'body/ownerId'],
    'each unknown field is named',
  );
  t.ok(extra.body.errors.every((e: { message: string }) => e.message === 'is not an allowed field'));

  const circle = await call(app, 'POST', '/v1/circles', { token: user.token, body: { name: 'x', joinPolicy: 'open' } });
  const asString = await call(app, 'POST', `/v1/circles/${circle.body.id}/invites`, {
    token: user.token,
    body: { maxUses: '5' },
  });
  t.ok(isProblem(asString, 400, 'invalid_request'), 'a number sent as a string is not coerced in a body');
  t.equal(asString.body.errors[0].path, 'body/maxUses');
  const asNumber = await call(app, 'POST', '/v1/circles', {
    token: user.token,
    body: { name: 42, joinPolicy: 'open' },
  });
  t.ok(isProblem(asNumber, 400, 'invalid_request'), 'nor a string sent as a number');
  const asArray = await call(app, 'POST', '/v1/circles', {
    token: user.token,
    body: [{ name: 'x', joinPolicy: 'open' }],
  });
  t.ok(isProblem(asArray, 400, 'invalid_request'), 'an array is not an object');

  // Query strings are text by nature: they are coerced.
  const limit = await call(app, 'GET', '/v1/circles?limit=1', { token: user.token });
  t.equal(limit.status, 200);
  t.equal(limit.body.items.length, 1);
  const unknownQuery = await call(app, 'GET', '/v1/circles?admin=true', { token: user.token });
  t.ok(isProblem(unknownQuery, 400, 'invalid_request'));
  t.equal(unknownQuery.body.errors[0].path, 'querystring/admin');

  t.equal((await db.selectFrom('circles').select('id').execute()).length, 1, 'only the valid request created anything');
});

t.test('an unexpected error is 500 internal_error and does not leak its message', async (t) => {
  const { app } = await buildTestAppWith(t, {}, (app) => {
    app.get('/boom', async () => {
      throw new Error('secret table users_pw exploded at 10.0.0.5');
    });
    app.get('/boom-pg', async () => {
      throw Object.assign(new Error('relation "x" does not exist'), { code: '42P01' });
    });
    app.get('/down', async () => {
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    });
  });
  for (const url of ['/boom', '/boom-pg']) {
    const res = await call(app, 'GET', url);
    t.ok(isProblem(res, 500, 'internal_error'), url);
    t.equal(res.body.detail, 'Something went wrong on our side; it has been logged.');
    t.notMatch(JSON.stringify(res.body), /secret|users_pw|10\.0\.0\.5|relation/);
    t.notOk(res.body.stack);
  }
  const down = await call(app, 'GET', '/down');
  t.ok(isProblem(down, 503, 'service_unavailable'), 'an unreachable backing service is 503, to be retried');
  t.equal(down.headers['retry-after'], '5');
  t.notMatch(down.body.detail, /5432/);
});

t.test('a request that deadlocks with another is 503 write_conflict, to be sent again', async (t) => {
  // A real deadlock: the route takes lock A then B, the test's transaction B then A. The test's
  // session waits 30 s before looking for deadlocks, the route's session the usual 1 s, so it is
  // the route's transaction Postgres rolls back.
  const { app, db } = await buildTestAppWith(t, {}, (app) => {
    app.post('/collide', async () =>
      app.db.transaction().execute(async (trx) => {
        await sql`SELECT pg_advisory_xact_lock(7070, 1)`.execute(trx);
        await sql`SELECT pg_advisory_xact_lock(7070, 2)`.execute(trx);
        return { collided: false };
      }),
    );
  });
  let answer!: Promise<Reply>;
  await db.transaction().execute(async (trx) => {
    await sql`SET LOCAL deadlock_timeout = '30s'`.execute(trx);
    await sql`SELECT pg_advisory_xact_lock(7070, 2)`.execute(trx);
    answer = call(app, 'POST', '/collide', { body: {} });
    await waitUntilBlockedBy(db, await backendPid(trx));
    await sql`SELECT pg_advisory_xact_lock(7070, 1)`.execute(trx);
  });
  const res = await answer;
  t.ok(isProblem(res, 503, 'write_conflict'), JSON.stringify(res.body));
  t.equal(res.headers['retry-after'], '1', 'it can go again at once');
  t.notMatch(res.body.detail, /deadlock|advisory|pid/i, 'no database detail leaks');
});

t.test('validation errors list every invalid field with its path', async (t) => {
  const { app } = await buildTestApp(t);
  const user = await registerUser(app);
  const res = await call(app, 'POST', '/v1/circles', {
    token: user.token,
    body: { name: '', joinPolicy: 'nope', description: 7 },
  });
  t.ok(isProblem(res, 400, 'invalid_request'));
  const paths = new Set(res.body.errors.map((e: { path: string }) => e.path));
  t.same([...paths].sort(), ['body/description', 'body/joinPolicy', 'body/name']);
  t.ok(res.body.errors.every((e: { message: string }) => typeof e.message === 'string' && e.message.length > 0));
});
