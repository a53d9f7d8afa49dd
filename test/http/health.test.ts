import t from 'tap';
import { buildApp } from '../../src/app.js';
import { buildTestApp, call, createTestEnv, isProblem } from '../helper.js';

t.test('healthz and readyz answer when Postgres and Redis are up', async (t) => {
  const { app } = await buildTestApp(t);
  const live = await call(app, 'GET', '/healthz');
  t.equal(live.status, 200);
  t.same(live.body, { status: 'ok' });
  const ready = await call(app, 'GET', '/readyz');
  t.equal(ready.status, 200);
  t.same(ready.body, { status: 'ok' });
  t.ok(live.headers['x-request-id'], 'every response carries its request id');
});

t.test('readyz answers 503 problem+json naming what is down', async (t) => {
  const { config } = await createTestEnv(t);
  const app = await buildApp({ config: { ...config, redisUrl: 'redis://127.0.0.1:1' }, logger: false });
  t.teardown(() => app.close());
  const ready = await call(app, 'GET', '/readyz');
  t.ok(isProblem(ready, 503, 'service_unavailable'), JSON.stringify(ready.body));
  t.match(ready.body.detail, /redis/);
  t.notMatch(ready.body.detail, /postgres/);
});
