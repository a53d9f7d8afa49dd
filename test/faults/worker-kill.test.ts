import t from 'tap';
import { sql } from 'kysely';
import { REDIS_URL, call, createCircle, registerUser } from '../helper.js';
import { createProject, joinMembers, queueHandle } from '../marketplace-helpers.js';
import { SEED, assertInvariants, faultApp, rng, serviceEnv, startService, summary, until } from './cluster.js';

// Workers are SIGKILLed in the middle of their work and restarted. Two worker processes share the
// queue; JOB_LOCK_SECONDS=2 lets a survivor or a restarted worker take over a killed one's job.
// Every settlement must complete exactly once, and every lease expire exactly once.

const withName = (url: string, name: string) => `${url}${url.includes('?') ? '&' : '?'}application_name=${name}`;
const dbName = (url: string) => new URL(url).pathname.slice(1);

t.comment(`FAULT_SEED=${SEED}`);

t.test(
  'SIGKILL the worker that is in the middle of a settlement: each settlement completes exactly once',
  async (t) => {
    const env = await faultApp(t);
    const app = env.app;
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);

    // Settlements large enough to be caught in flight: 4 projects x 15000 contributors.
    const CONTRIBUTORS = 15_000;
    const projects = [];
    for (let i = 0; i < 4; i++)
      projects.push(
        await createProject(app, owner, circle.id, { rewardPool: { amount: 1_000_003 + i, unit: 'points' } }),
      );
    await sql`INSERT INTO users (handle, password_hash, display_name) SELECT 'seed_' || g, 'x', 'Seed ' || g FROM generate_series(1, ${CONTRIBUTORS}::int) g`.execute(
      env.db,
    );
    for (const p of projects) {
      await sql`
      INSERT INTO contributions (circle_id, project_id, user_id, source, points, reason, created_by)
      SELECT ${circle.id}::uuid, ${p.id}::uuid, u.id, 'adjustment', 1 + (abs(hashtext(u.handle || ${p.id})) % 997), 'seeded for the fault test', ${owner.id}::uuid
      FROM users u WHERE u.handle LIKE 'seed\\_%'`.execute(env.db);
    }

    const base = serviceEnv(env, REDIS_URL);
    const workerEnv = (name: string) => ({ ...base, DATABASE_URL: withName(env.config.databaseUrl, name) });
    const workers = {
      'worker-a': await startService(t, 'worker', workerEnv('worker-a'), 'worker-a'),
      'worker-b': await startService(t, 'worker', workerEnv('worker-b'), 'worker-b'),
    };

    const requested: string[] = [];
    for (const p of projects) {
      const res = await call(app, 'POST', `/v1/projects/${p.id}/settlements`, { token: owner.token, body: {} });
      t.equal(res.status, 202);
      requested.push(res.body.id);
    }

    // The worker holding an open settlement transaction (it aggregates, splits and books in one),
    // and the settlement it holds: the row it locked carries its transaction id in xmax.
    const { worker: inFlight, settlementId } = (await until(
      'a settlement transaction in flight',
      async () => {
        const rows = await sql<{ worker: keyof typeof workers; settlementId: string }>`
      SELECT a.application_name AS worker, s.id AS "settlementId"
      FROM pg_stat_activity a JOIN settlements s ON s.xmax = a.backend_xid
      WHERE a.datname = ${dbName(env.config.databaseUrl)} AND a.application_name LIKE 'worker-%'
        AND a.state <> 'idle' AND a.query ~* '(contributions|payouts|ledger_)'`.execute(env.db);
        return rows.rows[0];
      },
      30_000,
      5,
    ))!;
    await workers[inFlight].kill('SIGKILL');
    const atKill = await env.db.selectFrom('settlements').select(['id', 'status']).execute();
    t.not(
      atKill.find((s) => s.id === settlementId)?.status,
      'completed',
      `the settlement ${inFlight} held was unfinished at the kill`,
    );
    t.pass(
      `killed ${inFlight} mid-settlement (${atKill.filter((s) => s.status === 'completed').length} of ${requested.length} completed at the kill)`,
    );

    // Restart it; the survivor and the restarted process finish the work.
    workers[inFlight] = await startService(t, 'worker', workerEnv(inFlight), inFlight);
    await until(
      'every settlement completed',
      async () => {
        const rows = await env.db.selectFrom('settlements').select('status').execute();
        return rows.length === requested.length && rows.every((r) => r.status === 'completed');
      },
      90_000,
      250,
    );

    for (const id of requested) {
      const s = await env.db.selectFrom('settlements').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      const txs = await env.db
        .selectFrom('ledger_transactions')
        .select('kind')
        .where('settlement_id', '=', id)
        .execute();
      const events = await env.db
        .selectFrom('events')
        .select('type')
        .where('subject_id', '=', id)
        .where('type', '=', 'settlement.completed')
        .execute();
      const payouts = await sql<{
        n: number;
        total: string;
      }>`SELECT count(*)::int AS n, coalesce(sum(amount), 0)::text AS total FROM payouts WHERE settlement_id = ${id}::uuid`.execute(
        env.db,
      );
      t.same(txs.map((x) => x.kind).sort(), ['pool_funding', 'settlement_payout'], `${id}: booked once`);
      t.equal(events.length, 1, `${id}: one settlement.completed event`);
      t.equal(payouts.rows[0]!.n, CONTRIBUTORS, `${id}: one payout per contributor`);
      t.equal(payouts.rows[0]!.total, String(s.distributed), `${id}: payouts sum to what was distributed`);
      t.equal(s.distributed! + s.undistributed!, s.pool_amount, `${id}: the whole pool is accounted for`);
    }
    const violations = await assertInvariants(t, env.db, 'worker killed mid-settlement');
    summary(t, 'worker-kill-settlement', {
      seed: SEED,
      settlements: requested.length,
      contributors: CONTRIBUTORS * requested.length,
      faults: 1,
      violations,
    });
  },
);

t.test('SIGKILL a worker while leases are expiring: every claim expires exactly once', async (t) => {
  const random = rng(SEED);
  const env = await faultApp(t);
  const app = env.app;
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const project = await createProject(app, owner, circle.id, {
    leaseSeconds: 4,
    tasks: Array.from({ length: 200 }, (_, i) => ({ title: `Task ${i}` })),
  });
  const members = await joinMembers(app, circle.id, 20);

  const base = serviceEnv(env, REDIS_URL);
  const workers = [
    await startService(t, 'worker', base, 'lease-worker-a'),
    await startService(t, 'worker', base, 'lease-worker-b'),
  ];

  // 20 members x 10 claims each: every task claimed, each lease running 4 s.
  const claims: string[] = [];
  for (let round = 0; round < 10; round++) {
    const replies = await Promise.all(
      members.map((m) => call(app, 'POST', `/v1/projects/${project.id}/claims/next`, { token: m.token, body: {} })),
    );
    for (const r of replies) if (r.status === 201) claims.push(r.body.id);
  }
  t.equal(claims.length, 200, 'every task is claimed');

  const expiredAtKill = (await until(
    'leases starting to expire',
    async () => {
      const row = await sql<{ n: number }>`SELECT count(*)::int AS n FROM claims WHERE status = 'expired'`.execute(
        env.db,
      );
      return row.rows[0]!.n || undefined;
    },
    30_000,
    5,
  )) as number;
  const victim = random() < 0.5 ? 0 : 1;
  await workers[victim]!.kill('SIGKILL');
  // Jobs the dead worker held stay active until their lock runs out and another worker takes them
  // over; with the survivor's running jobs, these are every job that could still expire a claim.
  const queues = [queueHandle(t, env.config, 'claim-expiry'), queueHandle(t, env.config, 'maintenance')];
  const activeAtKill = (await Promise.all(queues.map((q) => q.getActive()))).flatMap((jobs, i) =>
    jobs.map((job) => ({ queue: queues[i]!, id: job.id! })),
  );
  t.pass(
    `killed ${workers[victim]!.name} with ${expiredAtKill} of ${claims.length} leases expired and ${activeAtKill.length} jobs active`,
  );
  workers[victim] = await startService(t, 'worker', base, `${workers[victim]!.name}-restarted`);

  await until(
    'every lease expired',
    async () => {
      const row = await sql<{ n: number }>`SELECT count(*)::int AS n FROM claims WHERE status = 'expired'`.execute(
        env.db,
      );
      return row.rows[0]!.n === claims.length;
    },
    60_000,
    200,
  );
  // Every job active at the kill, the dead worker's included, is taken over and runs to its end
  // (it must find nothing left to expire), and no expiry job is running, before the events are
  // counted.
  await until(
    'every job active at the kill to finish',
    async () => {
      const jobs = await Promise.all(activeAtKill.map(({ queue, id }) => queue.getJob(id)));
      return jobs.every((job) => job?.finishedOn) && (await queues[0]!.getActiveCount()) === 0;
    },
    30_000,
    100,
  );

  const events = await sql<{ subject_id: string; n: number }>`
    SELECT subject_id, count(*)::int AS n FROM events WHERE type = 'claim.expired' GROUP BY subject_id`.execute(env.db);
  t.equal(events.rows.length, claims.length, 'one claim.expired event per claim');
  t.ok(
    events.rows.every((e) => e.n === 1),
    'and never two',
  );
  const slots = await sql<{ n: number }>`SELECT count(*)::int AS n FROM tasks WHERE live_claims <> 0`.execute(env.db);
  t.equal(slots.rows[0]!.n, 0, 'every slot freed exactly once (no task left at -1 or 1)');
  const violations = await assertInvariants(t, env.db, 'worker killed mid-lease-expiry');
  summary(t, 'worker-kill-leases', {
    seed: SEED,
    claims: claims.length,
    expiredAtKill,
    jobsActiveAtKill: activeAtKill.length,
    faults: 1,
    violations,
  });
});
