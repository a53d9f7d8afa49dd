import t from 'tap';
import { sql } from 'kysely';
import { buildApp } from '../../src/app.js';
import { QUEUE_SCHEMA } from '../../src/jobs/queue-backend.js';
import { type Reply, buildTestApp, call, createTestEnv, isProblem, queueBackendEnv } from '../helper.js';
import { readyz, waitFor } from '../marketplace-helpers.js';
import { heldTransaction } from '../held-transaction.js';

/** A 503 that names exactly this store as unreachable: what the test broke, and nothing that is up. */
const naming = (what: string) => (r: Reply) => r.status === 503 && r.body?.detail === `Not ready: ${what} unreachable.`;

t.test('healthz and readyz answer when Postgres and Redis are up', async (t) => {
  const { app } = await buildTestApp(t);
  const live = await call(app, 'GET', '/healthz');
  t.equal(live.status, 200);
  t.same(live.body, { status: 'ok' });
  const ready = await readyz(app);
  t.equal(ready.status, 200);
  t.same(ready.body, { status: 'ok' });
  t.ok(live.headers['x-request-id'], 'every response carries its request id');
});

t.test('readyz answers 503 problem+json naming what is down', async (t) => {
  const { config } = await createTestEnv(t);
  const app = await buildApp({ config: { ...config, redisUrl: 'redis://127.0.0.1:1' }, logger: false });
  t.teardown(() => app.close());
  const ready = await readyz(app, naming('redis'));
  t.ok(isProblem(ready, 503, 'service_unavailable'), JSON.stringify(ready.body));
  t.equal(ready.body.detail, 'Not ready: redis unreachable.', 'Postgres, which is up, is not named');
});

t.test('without Redis, readyz checks Postgres and the queue tables, and names them when missing', async (t) => {
  const { app, db } = await buildTestApp(t, queueBackendEnv('postgres'));
  t.equal(app.rateLimitRedis, null);
  const ready = await readyz(app);
  t.equal(ready.status, 200, JSON.stringify(ready.body));
  await sql`DROP SCHEMA ${sql.id(QUEUE_SCHEMA)} CASCADE`.execute(db);
  const missing = await readyz(app, naming('postgres queue tables'));
  t.ok(isProblem(missing, 503, 'service_unavailable'), JSON.stringify(missing.body));
  t.equal(missing.body.detail, 'Not ready: postgres queue tables unreachable.');
});

t.test('a probe that never answers makes readyz 503 at its 2 s deadline, naming it', async (t) => {
  const { app } = await buildTestApp(t);
  // The queue store's ping hangs, as a store that accepts the connection and then says nothing.
  app.queueConnection.ping = () => new Promise<void>(() => {});
  // Each answer takes the deadline. One from a stalled process may name Postgres too, so ask until
  // the answer names the hanging store alone, and time that answer.
  let ready = {} as Reply;
  let elapsed = 0;
  await waitFor(
    async () => {
      const started = Date.now();
      ready = await call(app, 'GET', '/readyz');
      elapsed = Date.now() - started;
      return naming('redis')(ready);
    },
    30_000,
    0,
  );
  t.ok(isProblem(ready, 503, 'service_unavailable'), JSON.stringify(ready.body));
  t.equal(ready.body.detail, 'Not ready: redis unreachable.');
  t.ok(elapsed >= 1_900 && elapsed < 15_000, `answered after ${elapsed} ms`);
});

t.test('readyz stays 200 while every connection of the request pool is busy', async (t) => {
  const { app } = await buildTestApp(t, { DATABASE_POOL_SIZE: '1' });
  // The pool's only connection, held as a long request would hold it.
  const busy = await heldTransaction(app.db, (trx) => sql`SELECT 1`.execute(trx));
  const ready = await readyz(app);
  t.equal(ready.status, 200, `a busy service is still ready (${JSON.stringify(ready.body)})`);
  await busy.commit();
});
