import t from 'tap';
import { sql } from 'kysely';
import { isBackendUnavailable } from '../../src/infra/pg-errors.js';
import { buildTestApp, call, registerUser } from '../helper.js';

// DATABASE_CONNECT_TIMEOUT_MS bounds how long a request waits for a pooled connection. With the
// pool's only connection held by the test, a request waits out the deadline and is answered 503
// with Retry-After, changing nothing; once the connection is free the same request succeeds.

t.test('a request that cannot get a connection within the deadline is a 503, and the next one works', async (t) => {
  const { app } = await buildTestApp(t, { DATABASE_POOL_SIZE: '1', DATABASE_CONNECT_TIMEOUT_MS: '300' });
  t.equal(app.config.databaseConnectTimeoutMs, 300);
  const ann = await registerUser(app, 'ann');

  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held!: () => void;
  const holding = new Promise<void>((resolve) => (held = resolve));
  const holder = app.db.connection().execute(async (conn) => {
    await sql`SELECT 1`.execute(conn);
    held();
    await released;
  });
  await holding;

  const direct = await sql`SELECT 1`.execute(app.db).catch((err: unknown) => err);
  t.match(direct, { message: /timeout exceeded when trying to connect/ }, 'the pool gives up at the deadline');
  t.ok(isBackendUnavailable(direct), 'and the failure counts as an unavailable backing service');

  const refused = await call(app, 'PATCH', '/v1/me', { token: ann.token, body: { displayName: 'Ann' } });
  t.equal(refused.status, 503);
  t.match(refused.body, { code: 'service_unavailable' });
  t.equal(refused.headers['retry-after'], '5', 'the client is told when to try again');

  release();
  await holder;
  const me = await call(app, 'GET', '/v1/me', { token: ann.token });
  t.equal(me.status, 200);
  t.not(me.body.displayName, 'Ann', 'the refused change was not made');
  const retried = await call(app, 'PATCH', '/v1/me', { token: ann.token, body: { displayName: 'Ann' } });
  t.equal(retried.status, 200, 'with the connection free again the same request succeeds');
});
