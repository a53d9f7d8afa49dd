import t from 'tap';
import { buildApp } from '../../src/app.js';
import { call, createTestEnv, isProblem } from '../helper.js';
import { readyz, waitFor } from '../marketplace-helpers.js';

// A worker process (ROLE=worker) listens too, serving only what operations need: health for its
// orchestrator, /metrics for Prometheus (its job figures live in that process) and, with a token,
// the queue dashboard. None of the API.

t.test('serve: operations answers health, metrics and the dashboard, and no API route', async (t) => {
  const { config } = await createTestEnv(t, { OPERATOR_TOKEN: 'operator-token-of-the-worker' });
  const app = await buildApp({ config, logger: false, serve: 'operations' });
  t.teardown(() => app.close());
  await app.ready();
  t.equal((await call(app, 'GET', '/healthz')).status, 200);
  t.equal((await readyz(app)).status, 200);
  // A source that misses a scrape's 2 s budget (a cold process on a busy machine) is left out of
  // that scrape by design: wait for a scrape in which the queues were read.
  const metrics = await waitFor(async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    return res.body.includes('circle_actions_metric_source_up{source="queues"} 1') ? res : undefined;
  }, 20_000);
  t.equal(metrics?.statusCode, 200);
  t.match(metrics?.body, /circle_actions_queue_jobs\{queue="settlements",state="waiting"\}/);
  t.equal((await call(app, 'GET', '/admin/queues', { token: 'operator-token-of-the-worker' })).status, 200);
  for (const url of ['/v1/me', '/openapi.json', '/docs'])
    t.ok(isProblem(await call(app, 'GET', url), 404, 'route_not_found'), `${url} is not served`);
});
