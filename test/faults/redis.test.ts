import t from 'tap';
import { sql } from 'kysely';
import type { Test } from 'tap';
import { buildApp } from '../../src/app.js';
import { openQueueConnection } from '../../src/jobs/queue-backend.js';
import { Queues, storedJobId } from '../../src/jobs/queues.js';
import { foldJobKey } from '../../src/circle-health/rollups.job.js';
import { relayEvents } from '../../src/worker.js';
import { call, createCircle, registerUser, type TestUser } from '../helper.js';
import { addTasks, claimTask, createProject, joinMembers, submitWork } from '../marketplace-helpers.js';
import {
  SEED,
  assertInvariants,
  faultEnv,
  http,
  privateRedis,
  serviceEnv,
  startService,
  summary,
  until,
  type FaultEnv,
} from './cluster.js';

// Redis carries only what Postgres can rebuild (DESIGN.md section 6). A private redis-server (never
// the machine's shared one) is killed while work is in flight: restarted empty, the sweeps must
// re-enqueue every pending settlement, lease expiry and review deadline; down for a while, the
// API must keep serving reads, claims, submissions and settlement requests.

t.comment(`FAULT_SEED=${SEED}`);

async function marketplace(env: FaultEnv, redisUrl: string) {
  const app = await buildApp({ config: { ...env.config, redisUrl }, logger: false });
  await app.ready();
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const members = await joinMembers(app, circle.id, 10);
  return { app, owner, circle, members };
}

/** A project with points to settle: one member's accepted adjustment. */
async function settleable(
  app: Awaited<ReturnType<typeof marketplace>>['app'],
  owner: TestUser,
  circleId: string,
  member: TestUser,
  i: number,
) {
  const project = await createProject(app, owner, circleId, { rewardPool: { amount: 100 + i, unit: 'points' } });
  const adj = await call(app, 'POST', `/v1/projects/${project.id}/adjustments`, {
    token: owner.token,
    body: { userId: member.id, points: 10 + i, reason: 'seed' },
  });
  if (adj.status !== 201) throw new Error(`adjustment: ${adj.status}`);
  return project.id;
}

async function statusCounts(env: FaultEnv) {
  const q = async (text: ReturnType<typeof sql<{ n: number }>>) => (await text.execute(env.db)).rows[0]!.n;
  return {
    activeClaims: await q(sql<{ n: number }>`SELECT count(*)::int AS n FROM claims WHERE status = 'active'`),
    unreviewed: await q(
      sql<{
        n: number;
      }>`SELECT count(*)::int AS n FROM submissions s WHERE NOT EXISTS (SELECT 1 FROM reviews r WHERE r.submission_id = s.id)`,
    ),
    unsettled: await q(sql<{ n: number }>`SELECT count(*)::int AS n FROM settlements WHERE status <> 'completed'`),
  };
}

t.test(
  'Redis restarted without persistence: the sweeps re-enqueue settlements, lease expiries and review deadlines',
  async (t: Test) => {
    const env = await faultEnv(t);
    const redis = await privateRedis(t);
    const { app, owner, circle, members } = await marketplace(env, redis.url);
    t.teardown(() => app.close());
    const envVars = serviceEnv(env, redis.url);
    const workerA = await startService(t, 'worker', envVars, 'worker-a');
    const workerB = await startService(t, 'worker', envVars, 'worker-b');

    // Leases and review windows of 5 s: their delayed jobs sit in Redis when it goes.
    const project = await createProject(app, owner, circle.id, { leaseSeconds: 5, reviewWindowSeconds: 5 });
    const tasks = await addTasks(
      app,
      owner,
      project.id,
      Array.from({ length: 20 }, (_, i) => ({ title: `Task ${i}` })),
    );
    const claims = await Promise.all(tasks.map((task, i) => claimTask(app, members[i % members.length]!, task.id)));
    t.ok(claims.every((c) => c.status === 201));
    const submitted = await Promise.all(
      claims.slice(0, 10).map((c, i) => submitWork(app, members[i % members.length]!, c.body.id)),
    );
    t.ok(submitted.every((s) => s.status === 201));
    const settleProjects = [];
    for (let i = 0; i < 6; i++) settleProjects.push(await settleable(app, owner, circle.id, members[i]!, i));

    // Settlements requested while the workers are frozen (SIGSTOP), so their jobs sit in Redis when
    // it goes; half of them as if the relay had already delivered them (events marked relayed), so
    // only the settlement sweep can bring those back.
    const workerList = [workerA, workerB];
    for (const w of workerList) w.child.kill('SIGSTOP');
    const requested = [];
    for (const id of settleProjects) {
      const res = await call(app, 'POST', `/v1/projects/${id}/settlements`, { token: owner.token, body: {} });
      t.equal(res.status, 202);
      requested.push(res.body.id as string);
    }
    await sql`UPDATE events SET relayed_at = now() WHERE type = 'settlement.requested' AND subject_id = ANY(${requested.slice(0, 3)}::uuid[])`.execute(
      env.db,
    );
    const before = await statusCounts(env);
    t.same(before, { activeClaims: 10, unreviewed: 10, unsettled: 6 }, 'work in flight when Redis goes');

    await redis.kill();
    await redis.start();
    for (const w of workerList) w.child.kill('SIGCONT');
    t.pass('Redis restarted empty; the workers resumed and reconnected');

    const recovered = async () => {
      const now = await statusCounts(env);
      return now.activeClaims === 0 && now.unreviewed === 0 && now.unsettled === 0;
    };
    // The surviving workers must recover on their own: their sweeps are repeating jobs in Redis.
    let byThemselves = true;
    try {
      await until(
        'the surviving workers to expire every lease, apply every deadline and complete every settlement',
        recovered,
        25_000,
        250,
      );
    } catch (err) {
      byThemselves = false;
      t.fail(
        `the surviving workers did not recover the lost jobs: ${(err as Error).message}; ${JSON.stringify(await statusCounts(env))}`,
      );
    }
    t.ok(byThemselves, 'recovered without restarting any process');
    if (!byThemselves) {
      // What an operator would do: restart the workers (they declare their schedules at start).
      for (const w of workerList) await w.kill('SIGKILL');
      await startService(t, 'worker', envVars, 'worker-a-restarted');
      await startService(t, 'worker', envVars, 'worker-b-restarted');
      await until('restarted workers to recover the lost jobs', recovered, 30_000, 250);
      t.pass('restarted workers recovered every lost job');
    }

    const expired = await sql<{
      n: number;
    }>`SELECT count(*)::int AS n FROM events WHERE type = 'claim.expired'`.execute(env.db);
    t.equal(expired.rows[0]!.n, 10, 'each lease expired once');
    const automatic = await sql<{ n: number }>`SELECT count(*)::int AS n FROM reviews WHERE automatic`.execute(env.db);
    t.equal(automatic.rows[0]!.n, 10, 'each overdue submission accepted once, automatically');
    const booked = await sql<{
      n: number;
    }>`SELECT count(*)::int AS n FROM ledger_transactions WHERE kind = 'settlement_payout'`.execute(env.db);
    t.equal(booked.rows[0]!.n, 6, 'each settlement paid out once');
    const violations = await assertInvariants(t, env.db, 'Redis restarted without persistence');
    summary(t, 'redis-restart', {
      seed: SEED,
      leases: 10,
      deadlines: 10,
      settlements: 6,
      faults: 1,
      recoveredWithoutRestart: String(byThemselves),
      violations,
    });
  },
);

t.test(
  'Redis down for a while: reads, claims, submissions and settlement requests still answer; the work completes when it returns',
  async (t: Test) => {
    const env = await faultEnv(t);
    const redis = await privateRedis(t, { persistent: true });
    const { app, owner, circle, members } = await marketplace(env, redis.url);
    t.teardown(() => app.close());
    const envVars = serviceEnv(env, redis.url);
    const apis = [await startService(t, 'api', envVars, 'api-a'), await startService(t, 'api', envVars, 'api-b')];
    await startService(t, 'worker', envVars, 'worker-a');
    await startService(t, 'worker', envVars, 'worker-b');

    const project = await createProject(app, owner, circle.id, { leaseSeconds: 30, reviewWindowSeconds: 30 });
    await addTasks(
      app,
      owner,
      project.id,
      Array.from({ length: 40 }, (_, i) => ({ title: `Task ${i}` })),
    );
    const settleProjects = [];
    for (let i = 0; i < 4; i++) settleProjects.push(await settleable(app, owner, circle.id, members[i]!, i));

    await redis.kill();
    const statuses: Record<string, number> = {};
    let sent = 0;
    const record = (what: string, res: { status: number; type: string; body: any }) => {
      sent++;
      statuses[`${what} ${res.status}`] = (statuses[`${what} ${res.status}`] ?? 0) + 1;
      if (res.status >= 500)
        t.ok(
          res.status === 503 &&
            res.type.startsWith('application/problem+json') &&
            res.body?.code === 'service_unavailable',
          `${what}: a 5xx is a documented 503 (${res.status})`,
        );
    };
    const readiness = await http(apis[0]!.url, 'GET', '/readyz');
    t.equal(readiness.status, 503, 'readiness reports Redis down');

    const deadline = Date.now() + 5_000;
    const settlements: string[] = [];
    let round = 0;
    while (Date.now() < deadline && round < 3) {
      await Promise.all(
        members.map(async (m, i) => {
          const api = apis[(i + round) % 2]!.url;
          record(
            'read',
            await http(api, 'GET', `/v1/projects/${project.id}/tasks?limit=5`, { token: m.token, timeoutMs: 4_000 }),
          );
          const claim = await http(api, 'POST', `/v1/projects/${project.id}/claims/next`, {
            token: m.token,
            body: {},
            timeoutMs: 4_000,
          });
          record('claim', claim);
          if (claim.status === 201)
            record(
              'submit',
              await http(api, 'POST', `/v1/claims/${claim.body.id}/submissions`, {
                token: m.token,
                body: { content: 'done while Redis was down' },
                timeoutMs: 4_000,
              }),
            );
        }),
      );
      const projectId = settleProjects[round];
      if (projectId) {
        const res = await http(apis[round % 2]!.url, 'POST', `/v1/projects/${projectId}/settlements`, {
          token: owner.token,
          body: {},
          timeoutMs: 4_000,
        });
        record('settle', res);
        if (res.status === 202) settlements.push(res.body.id);
      }
      round++;
    }
    t.ok(
      (statuses['read 200'] ?? 0) > 0 && (statuses['claim 201'] ?? 0) > 0 && (statuses['submit 201'] ?? 0) > 0,
      `reads, claims and submissions succeeded: ${JSON.stringify(statuses)}`,
    );
    t.ok(settlements.length > 0, 'settlement requests were accepted');
    t.notOk(
      Object.keys(statuses).some((k) => k.endsWith(' 500')),
      'no 500s',
    );
    const unanswered = Object.entries(statuses)
      .filter(([k]) => k.endsWith(' 0'))
      .reduce((n, [, v]) => n + v, 0);
    t.equal(unanswered, 0, `every request was answered within 4 s (${unanswered} were not)`);

    await redis.start();
    await until(
      'readiness with Redis back',
      async () => (await http(apis[1]!.url, 'GET', '/readyz')).status === 200,
      20_000,
    );
    // Requests that got no answer may still have been carried out once Redis returned: every
    // settlement stored, acknowledged or not, must complete.
    await until(
      'every settlement requested during the outage to complete',
      async () => {
        const rows = await env.db.selectFrom('settlements').select('status').execute();
        return rows.every((r) => r.status === 'completed');
      },
      30_000,
      250,
    );
    t.pass(`${settlements.length} settlements requested during the outage completed after it`);
    const violations = await assertInvariants(t, env.db, 'Redis down for a while');
    summary(t, 'redis-down', {
      seed: SEED,
      requests: sent,
      unanswered,
      outageSeconds: 5,
      settlements: settlements.length,
      faults: 1,
      violations,
      statuses: JSON.stringify(statuses).replaceAll(' ', '_'),
    });
  },
);

t.test(
  'a relay in flight when Redis goes down lets go of its transaction and relays the batch once Redis is back',
  async (t: Test) => {
    const env = await faultEnv(t);
    const redis = await privateRedis(t, { persistent: true });
    const { app, owner, circle } = await marketplace(env, redis.url);
    t.teardown(() => app.close());
    // A circle edit's event triggers a job when relayed (a rollup fold), and nothing on the request path.
    const edited = await call(app, 'PATCH', `/v1/circles/${circle.id}`, {
      token: owner.token,
      body: { name: 'Renamed while Redis fails' },
    });
    t.equal(edited.status, 200, 'the circle edit is stored');
    const event = await env.db
      .selectFrom('events')
      .select(['id', 'relayed_at'])
      .where('type', '=', 'circle.updated')
      .where('subject_id', '=', circle.id)
      .executeTakeFirstOrThrow();
    t.equal(event.relayed_at, null, 'its event waits for the relay');

    // The worker's own producer, as its maintenance jobs get it: it waits through an outage.
    const config = { ...env.config, redisUrl: redis.url };
    const producer = openQueueConnection(config, 'worker', () => {});
    const queues = new Queues(producer, config.queuePrefix);
    t.teardown(async () => {
      await queues.close();
      await producer.close();
    });
    const ctx = { db: env.db, queues, config, log: app.log };
    t.ok(await producer.waitUntilReady(5_000), 'the worker producer reached Redis');

    await redis.kill();
    const started = Date.now();
    const outcome = await Promise.race([
      relayEvents(ctx).then(
        () => 'relayed' as const,
        () => 'failed' as const,
      ),
      new Promise<'still waiting'>((done) => setTimeout(() => done('still waiting'), 10_000)),
    ]);
    t.equal(outcome, 'failed', 'with Redis down the relay pass fails instead of waiting for it');
    t.ok(Date.now() - started < 5_000, `it failed within 5 s (${Date.now() - started} ms)`);
    const open = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`.execute(env.db);
    t.equal(open.rows[0]!.n, 0, 'no transaction is left open on the database');
    const during = await env.db
      .selectFrom('events')
      .select('relayed_at')
      .where('id', '=', event.id)
      .executeTakeFirstOrThrow();
    t.equal(during.relayed_at, null, 'the event is not marked relayed: its job was never enqueued');

    await redis.start();
    t.ok(await producer.waitUntilReady(20_000), 'the worker producer is back with Redis');
    t.ok((await relayEvents(ctx)) >= 1, 'the next pass relays the batch');
    const after = await env.db
      .selectFrom('events')
      .select('relayed_at')
      .where('id', '=', event.id)
      .executeTakeFirstOrThrow();
    t.not(after.relayed_at, null, 'the event is marked relayed');
    const job = await queues.get('circle-rollups').getJob(storedJobId(foldJobKey(circle.id, `event-${event.id}`)));
    t.ok(job, 'the job it triggers is in the queue');
    const violations = await assertInvariants(t, env.db, 'relay through a Redis outage');
    summary(t, 'relay-redis-down', { seed: SEED, faults: 1, failedWithinMs: 5_000, violations });
  },
);
