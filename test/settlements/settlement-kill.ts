import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Test } from 'tap';
import { sql } from 'kysely';
import type { Config } from '../../src/config.js';
import type { Db } from '../../src/infra/postgres.js';
import { buildTestApp, createCircle, queueBackendEnv, registerUser, type QueueBackendName } from '../helper.js';
import { createProject, eventTypes } from '../marketplace-helpers.js';
import { childEnv } from '../service-process.js';
import {
  assertInvariants,
  recomputeHash,
  requestSettlementId,
  seedContributions,
  settlementFootprint,
  settlementStatus,
  waitForSettled,
} from '../settlement-helpers.js';

// A real worker process killed with SIGKILL in the middle of settling a large project: the
// settlement's one transaction leaves nothing behind, and the next worker settles it exactly once.
// One test file per queue backend (settlement-kill*.test.ts) runs it: each takes about a minute of
// seeding and settling, so each gets the runner's per-file time limit to itself. (On Postgres the
// killed worker's job lock is a row, and it expires as on Redis.)

// node itself with tsx as a loader, not the tsx CLI: the CLI runs the script in a child process,
// and a SIGKILL (which it cannot relay) would leave that child running.
const NODE = resolve('node_modules/.bin/node');

const MEMBERS = 20_000;
const ROWS = 100_000;
const POOL = 1_000_003;

interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

function startWorkerProcess(t: Test, config: Config): WorkerProcess {
  const child = spawn(NODE, ['--import', 'tsx', 'src/server.ts'], {
    cwd: resolve('.'),
    env: childEnv({
      ROLE: 'worker',
      // A worker process serves its health on PORT: any free port, since the Redis and Postgres
      // variants of this scenario run side by side and would both take the default.
      PORT: '0',
      DATABASE_URL: config.databaseUrl,
      DATABASE_POOL_SIZE: '4',
      REDIS_URL: config.redisUrl ?? '',
      QUEUE_BACKEND: config.queueBackend,
      QUEUE_PREFIX: config.queuePrefix,
      JOB_LOCK_SECONDS: '2',
      SWEEP_INTERVAL_SECONDS: '1',
      LOG_LEVEL: 'warn',
      JWT_SECRET: 'kill-test-secret-that-is-long-enough-0123456789',
    }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  );
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, exited, stderr: () => stderr };
}

/**
 * Waits until a backend of the test's database is inside a settlement's write phase: a
 * transaction that holds a transaction id (the settlement row is locked) running or between the
 * payout and ledger statements.
 */
async function waitUntilSettling(db: Db, config: Config, worker: WorkerProcess, timeoutMs = 60_000): Promise<string> {
  const database = new URL(config.databaseUrl).pathname.slice(1);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (worker.child.exitCode !== null) throw new Error(`worker exited early: ${worker.stderr()}`);
    const rows = await sql<{ query: string }>`
      SELECT query FROM pg_stat_activity
      WHERE datname = ${database} AND backend_xid IS NOT NULL AND state IN ('active', 'idle in transaction')
        AND (query ILIKE '%payouts%' OR query ILIKE '%ledger_%')`.execute(db);
    if (rows.rows.length) return rows.rows[0]!.query;
    await sleep(10);
  }
  throw new Error(`the worker never started settling: ${worker.stderr()}`);
}

/** The whole scenario on one queue backend. */
export async function settlementKillScenario(t: Test, backend: QueueBackendName): Promise<void> {
  const started = Date.now();
  const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const project = await createProject(app, owner, circle.id, {
    title: 'Big project',
    rewardPool: { amount: POOL, unit: 'credits' },
  });
  await seedContributions(db, {
    circleId: circle.id,
    projectId: project.id,
    createdBy: owner.id,
    members: MEMBERS,
    rows: ROWS,
  });
  const id = await requestSettlementId(app, owner, project.id);
  t.comment(`seeded in ${Date.now() - started} ms`);

  const first = startWorkerProcess(t, config);
  const caught = await waitUntilSettling(db, config, first);
  first.child.kill('SIGKILL');
  t.comment(`killed at ${Date.now() - started} ms`);
  t.same(await first.exited, { code: null, signal: 'SIGKILL' }, 'the worker was killed');
  t.comment(`killed while running: ${caught.replace(/\s+/g, ' ').slice(0, 80)}`);

  t.equal(await settlementStatus(db, id), 'pending', 'the settlement is still pending');
  t.same(
    await settlementFootprint(db, id),
    { payouts: 0, payees: 0, paid: 0, ledgerTransactions: 0, ledgerEntries: 0, completedEvents: 0 },
    'no payout, ledger row or event of the killed attempt is visible',
  );

  const second = startWorkerProcess(t, config);
  t.equal(await waitForSettled(db, id, 75_000), 'completed', 'a new worker took the job over and completed it');
  t.comment(`completed at ${Date.now() - started} ms`);
  second.child.kill('SIGTERM');
  t.same(
    await second.exited,
    { code: 0, signal: null },
    `the second worker shut down cleanly; stderr: ${second.stderr()}`,
  );

  const s = await db.selectFrom('settlements').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const footprint = await settlementFootprint(db, id);
  t.equal(footprint.payouts, MEMBERS, 'one payout row per member with points');
  t.equal(footprint.payees, MEMBERS, 'and no member twice');
  t.equal(s.payee_count, MEMBERS);
  t.equal(footprint.paid + s.undistributed!, POOL, 'payouts plus the undistributed rest make the pool');
  t.equal(footprint.paid, s.distributed);
  t.equal(footprint.ledgerTransactions, 2, 'one funding and one payout transaction');
  t.equal(footprint.ledgerEntries, 2 + MEMBERS + 1, 'one entry per payee, plus the pool and funding entries');
  t.equal(footprint.completedEvents, 1);
  t.equal(s.attempts, 1, 'exactly one attempt committed');
  t.equal(s.result_hash, await recomputeHash(db, id), 'the result hash is the split recomputed from the contributions');
  const balances = await sql<{ n: string }>`
  SELECT count(*) AS n FROM payouts p JOIN ledger_accounts a ON a.owner_id = p.user_id AND a.kind = 'member_balance'
  WHERE p.settlement_id = ${id} AND a.balance = p.amount`.execute(db);
  t.equal(Number(balances.rows[0]!.n), MEMBERS, 'every member balance holds exactly its payout');
  t.same(await eventTypes(db, id), ['settlement.requested', 'settlement.completed']);
  await assertInvariants(t, db);
}
