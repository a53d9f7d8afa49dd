import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { Registry } from 'prom-client';
import { LeaseExpiryMetrics } from '../../src/claims/lease-metrics.js';
import { gaugeReadAtScrape } from '../../src/metric-source.js';
import { WebhookDeliveryMetrics } from '../../src/webhooks/webhook-metrics.js';
import { buildApp } from '../../src/app.js';
import { workerMetrics } from '../../src/worker.js';
import { createTestEnv, onEachQueueBackend, queueBackendEnv, registerUser, createCircle, call } from '../helper.js';
import {
  addTasks,
  claimTask,
  completeTask,
  createProject,
  joinMembers,
  startWorkers,
  waitFor,
} from '../marketplace-helpers.js';
import { requestSettlementId, waitForSettled } from '../settlement-helpers.js';

// /metrics after a real story (a lease claimed and left to expire, a project settled) on each
// queue backend: the shared figures read at scrape time (queue depths, settlements, overdue
// leases) and the worker's own (job durations and failures, leases expired by job or sweep). An
// API process without workers reports the same shared figures.

/** The scrape as {series → value}, series written as Prometheus prints them. */
async function scrape(app: FastifyInstance): Promise<Map<string, number>> {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  if (res.statusCode !== 200) throw new Error(`scrape failed: ${res.statusCode} ${res.body}`);
  const series = new Map<string, number>();
  for (const line of res.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    series.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return series;
}

/**
 * True when every source read its figures for this scrape. A source gets 2 s per scrape and on a
 * busy machine a cold process can miss that (its figures are then left out, by design), so the
 * story's assertions wait for a scrape in which every source answered.
 */
function everySourceRead(series: Map<string, number>): boolean {
  const up = [...series].filter(([name]) => name.startsWith('circle_actions_metric_source_up{'));
  return up.length > 0 && up.every(([, value]) => value === 1);
}

onEachQueueBackend(t, 'a scrape after claim, expiry and settlement reports the story', async (t, backend) => {
  const { config, db } = await createTestEnv(t, queueBackendEnv(backend));
  const metrics = workerMetrics();
  // ROLE=all: the API and the workers in one process, the app serving the workers' figures.
  const app = await buildApp({ config, logger: false, metricSources: metrics.sources });
  t.teardown(() => app.close());
  await app.ready();
  await startWorkers(t, config, metrics);

  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [ann, ben] = await joinMembers(app, circle.id, 2);
  const project = await createProject(app, owner, circle.id, {
    rewardPool: { amount: 100, unit: 'credits' },
  });
  const [done, left] = await addTasks(app, owner, project.id, [{ title: 'Done' }, { title: 'Left to expire' }]);
  await completeTask(app, owner, ann!, done!.id);
  const claim = await claimTask(app, ben!, left!.id);
  t.equal(claim.status, 201);
  // ben's lease runs out: its deadline is moved a second into the past in database time and the
  // sweep expires it. (With 1 s leases instead, ann's own claim ran out before her submission on
  // a loaded machine.)
  await db
    .updateTable('claims')
    .set({ expires_at: sql<Date>`now() - interval '1 second'` })
    .where('id', '=', claim.body.id)
    .execute();
  const expired = await waitFor(async () => {
    const res = await call(app, 'GET', `/v1/claims/${claim.body.id}`, { token: ben!.token });
    return res.body.status === 'expired';
  }, 60_000);
  t.ok(expired, 'the lease expired');
  const settlementId = await requestSettlementId(app, owner, project.id);
  t.equal(await waitForSettled(db, settlementId), 'completed');

  // The worker's counters are bumped after its transaction commits: wait for the figures. Each
  // source has 2 s to answer a scrape, which a starved process can miss several times in a row:
  // the waits here are as long as the other observable-event waits of the suite (60 s).
  const figures = await waitFor(async () => {
    const s = await scrape(app);
    const byJob = s.get('circle_actions_leases_expired_total{by="job"}') ?? 0;
    const bySweep = s.get('circle_actions_leases_expired_total{by="sweep"}') ?? 0;
    const settled = s.get('circle_actions_job_duration_seconds_count{queue="settlements",outcome="completed"}') ?? 0;
    return byJob + bySweep >= 1 && settled >= 1 && everySourceRead(s) ? s : undefined;
  }, 60_000);
  t.ok(figures, 'the expiry and the settlement job are counted');
  const s = figures!;
  t.equal(
    (s.get('circle_actions_leases_expired_total{by="job"}') ?? 0) +
      (s.get('circle_actions_leases_expired_total{by="sweep"}') ?? 0),
    1,
    'one lease expired, by the job of its second or by the sweep, whichever came first',
  );
  t.equal(s.get('circle_actions_settlements{status="completed"}'), 1);
  t.equal(s.get('circle_actions_settlements{status="failed"}'), 0);
  t.equal(s.get('circle_actions_leases_overdue'), 0, 'no lease is left overdue');
  for (const queue of [
    'maintenance',
    'claim-expiry',
    'review-deadline',
    'settlements',
    'challenge-closing',
    'webhook-delivery',
    'circle-rollups',
  ])
    for (const state of ['waiting', 'active', 'delayed', 'failed'])
      t.ok(s.has(`circle_actions_queue_jobs{queue="${queue}",state="${state}"}`), `${queue} ${state} is reported`);
  t.ok(
    (s.get('circle_actions_queue_jobs{queue="maintenance",state="delayed"}') ?? 0) >= 1,
    "the schedulers' next runs wait as delayed jobs",
  );
  t.ok(
    (s.get('circle_actions_job_duration_seconds_count{queue="maintenance",outcome="completed"}') ?? 0) >= 1,
    'maintenance runs are timed',
  );
  t.equal(s.get('circle_actions_job_failures_total{queue="settlements"}') ?? 0, 0, 'no settlement run failed');
  for (const source of ['queues', 'settlements', 'leases', 'webhooks'])
    t.equal(s.get(`circle_actions_metric_source_up{source="${source}"}`), 1, `${source} read`);

  // Another API process (no workers) reads the same shared figures; job figures are the worker's.
  const apiOnly = await buildApp({ config, logger: false });
  t.teardown(() => apiOnly.close());
  await apiOnly.ready();
  const other = await waitFor(async () => {
    const s = await scrape(apiOnly);
    return everySourceRead(s) ? s : undefined;
  }, 60_000);
  if (!other) throw new Error('a source of the API process stayed unread for 60 s');
  t.equal(other.get('circle_actions_settlements{status="completed"}'), 1, 'settlements, read from Postgres');
  t.ok(other.has('circle_actions_queue_jobs{queue="maintenance",state="delayed"}'), 'queue depths, from the store');
  t.notOk(
    [...other.keys()].some((k) => k.startsWith('circle_actions_job_duration_seconds')),
    'no job figures where no jobs run',
  );
});

t.test('leases expired are counted by what expired them, from the runs of this process', async (t) => {
  const metrics = new LeaseExpiryMetrics();
  const registry = new Registry();
  metrics.register(registry);
  metrics.completed('claim-expiry', { dueAt: 1 }, { expired: 2 });
  metrics.completed('maintenance', { task: 'expire-overdue-claims' }, { expired: 3 });
  metrics.completed('maintenance', { task: 'accept-overdue-submissions' }, { accepted: 4 });
  metrics.completed('claim-expiry', { dueAt: 2 }, { expired: 0 });
  const text = await registry.metrics();
  t.match(text, 'circle_actions_leases_expired_total{by="job"} 2');
  t.match(text, 'circle_actions_leases_expired_total{by="sweep"} 3');
});

t.test('webhook delivery jobs are counted by outcome', async (t) => {
  const metrics = new WebhookDeliveryMetrics();
  const registry = new Registry();
  metrics.register(registry);
  metrics.completed('webhook-delivery', {}, { result: 'succeeded' });
  metrics.completed('webhook-delivery', {}, { result: 'retrying' });
  metrics.completed('webhook-delivery', {}, { result: 'retrying' });
  metrics.completed('settlements', {}, { result: 'succeeded' });
  const text = await registry.metrics();
  t.match(text, 'circle_actions_webhook_deliveries_total{outcome="succeeded"} 1');
  t.match(text, 'circle_actions_webhook_deliveries_total{outcome="retrying"} 2');
  t.match(text, 'circle_actions_webhook_deliveries_total{outcome="failed"} 0');
});

t.test('a source that cannot read its store leaves its figures out; the scrape still answers', async (t) => {
  const { config } = await createTestEnv(t);
  const broken = gaugeReadAtScrape({
    source: 'unreachable',
    name: 'circle_actions_unreachable_figure',
    help: 'A figure whose store is down',
    labelNames: ['outcome'],
    read: async () => {
      throw new Error('store unreachable');
    },
  });
  const working = gaugeReadAtScrape({
    source: 'example',
    name: 'circle_actions_example',
    help: 'An injected figure',
    labelNames: ['outcome'],
    read: async () => [{ labels: { outcome: 'delivered' }, value: 7 }],
  });
  const app = await buildApp({ config, logger: false, metricSources: [broken, working] });
  t.teardown(() => app.close());
  const s = await scrape(app);
  t.equal(s.get('circle_actions_metric_source_up{source="unreachable"}'), 0);
  t.notOk(
    [...s.keys()].some((k) => k.startsWith('circle_actions_unreachable_figure{')),
    'no stale figures',
  );
  t.equal(s.get('circle_actions_metric_source_up{source="example"}'), 1);
  t.equal(s.get('circle_actions_example{outcome="delivered"}'), 7, 'an injected source is served');
});
