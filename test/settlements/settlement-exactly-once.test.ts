import t, { type Test } from 'tap';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../src/config.js';
import type { Db } from '../../src/infra/postgres.js';
import { Queues, storedJobId } from '../../src/jobs/queues.js';
import { openQueueConnection } from '../../src/jobs/queue-backend.js';
import { settleProject } from '../../src/settlements/settle-project.js';
import {
  FAILURE_REASON,
  MAX_SWEEP_RETRIES,
  requeueUnfinishedSettlements,
  settlementJobKey,
} from '../../src/settlements/settlement.job.js';
import {
  buildTestApp,
  call,
  createCircle,
  flushQueueStore,
  isProblem,
  onEachQueueBackend,
  queueBackendEnv,
  registerUser,
  type TestUser,
} from '../helper.js';
import {
  createProject,
  eventTypes,
  finishedJob,
  joinMembers,
  processorWorkers,
  failedRun,
  saboteurWorker,
  startWorkers,
} from '../marketplace-helpers.js';
import {
  adjust,
  assertInvariants,
  recomputeHash,
  requestSettlement,
  requestSettlementId,
  settlementFootprint,
  settlementStatus,
  waitForSettled,
} from '../settlement-helpers.js';

// Exactly once: a settlement delivered twice, settled twice at once, lost from the queue store, or
// failing every attempt still ends as one complete result (or one clean failure), never as two or
// half. The parts that go through BullMQ run on each queue backend.

/** A circle with `members` members holding varied points in a project with the given pool. */
async function projectWithContributors(
  app: FastifyInstance,
  pool: number,
  members: number,
  circle?: { owner: TestUser; id: string; members: TestUser[] },
) {
  const owner = circle?.owner ?? (await registerUser(app, 'owner'));
  const circleId = circle?.id ?? (await createCircle(app, owner)).id;
  const people = circle?.members ?? (await joinMembers(app, circleId, members));
  const project = await createProject(app, owner, circleId, { rewardPool: { amount: pool, unit: 'credits' } });
  for (const [i, m] of people.entries()) await adjust(app, owner, project.id, m.id, 1 + ((i * 5) % 7));
  return { owner, circleId, members: people, project };
}

/** Producers on the test's queue store, without workers; closed at teardown. */
function producers(t: Test, config: Config) {
  const producer = openQueueConnection(config, 'worker');
  const queues = new Queues(producer, config.queuePrefix);
  t.teardown(async () => {
    await queues.close();
    await producer.close();
  });
  return queues;
}

async function ledgerTransactionCount(db: Db): Promise<number> {
  const row = await db
    .selectFrom('ledger_transactions')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

onEachQueueBackend(
  t,
  'duplicate delivery: settled twice at once and redelivered through BullMQ, a settlement pays once',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const a = await projectWithContributors(app, 100_003, 12);
    const b = await projectWithContributors(app, 77_777, 0, { owner: a.owner, id: a.circleId, members: a.members });
    const first = await requestSettlementId(app, a.owner, a.project.id);
    const second = await requestSettlementId(app, a.owner, b.project.id);

    // Two workers at once on one settlement: the row lock makes the second wait, then find it done.
    const outcomes = await Promise.all([settleProject(db, first), settleProject(db, first)]);
    t.same(outcomes.sort(), ['already_done', 'completed'], 'one settles, the other finds it done');
    const footprint = await settlementFootprint(db, first);
    t.same(
      footprint,
      { payouts: 12, payees: 12, paid: 100_003, ledgerTransactions: 2, ledgerEntries: 2 + 12 + 1, completedEvents: 1 },
      'one payout per payee, one funding and one payout transaction, one completion event',
    );
    const hash = (
      await db.selectFrom('settlements').select('result_hash').where('id', '=', first).executeTakeFirstOrThrow()
    ).result_hash;
    t.equal(hash, await recomputeHash(db, first), 'the stored hash is the split recomputed from the contributions');
    t.equal(await settleProject(db, first), 'already_done', 'a late third delivery is a no-op');

    // Through BullMQ: the request already enqueued the settlement's job; a redelivery under another job
    // id (as after a queue store restore) runs the processor a second time, on a second worker.
    const queuesA = await processorWorkers(t, db, config);
    const queuesB = await processorWorkers(t, db, config);
    await queuesB.add('settlements', { settlementId: second }, { jobId: `${settlementJobKey(second)}:redelivered` });
    await queuesB.add('settlements', { settlementId: first }, { jobId: `${settlementJobKey(first)}:redelivered` });
    const queue = queuesA.get('settlements');
    const jobs = await Promise.all(
      [
        settlementJobKey(second),
        `${settlementJobKey(second)}:redelivered`,
        settlementJobKey(first),
        `${settlementJobKey(first)}:redelivered`,
      ].map((key) => finishedJob(queue, storedJobId(key))),
    );
    t.same(
      jobs.map((j) => j.failedReason),
      [undefined, undefined, undefined, undefined],
      'every delivery succeeded',
    );
    t.same(
      jobs
        .slice(0, 2)
        .map((j) => j.returnvalue.outcome)
        .sort(),
      ['already_done', 'completed'],
      'the second settlement was settled by one delivery only',
    );
    t.same(
      jobs.slice(2).map((j) => j.returnvalue.outcome),
      ['already_done', 'already_done'],
      'the first was already done',
    );

    t.same(await settlementFootprint(db, first), footprint, 'redeliveries changed nothing');
    t.equal(
      (await db.selectFrom('settlements').select('result_hash').where('id', '=', first).executeTakeFirstOrThrow())
        .result_hash,
      hash,
      'the same hash',
    );
    t.match(await settlementFootprint(db, second), {
      payouts: 12,
      payees: 12,
      paid: 77_777,
      ledgerTransactions: 2,
      completedEvents: 1,
    });
    const secondRow = await db.selectFrom('settlements').selectAll().where('id', '=', second).executeTakeFirstOrThrow();
    t.equal(secondRow.result_hash, await recomputeHash(db, second));
    t.equal(secondRow.attempts, 1, 'completed by exactly one attempt');
    t.equal(await ledgerTransactionCount(db), 4, 'two transactions per settlement, no more');
    await assertInvariants(t, db);
  },
);

t.test('settlements of several projects in one circle run at once without deadlocking', async (t) => {
  const { app, db } = await buildTestApp(t);
  const base = await projectWithContributors(app, 1_000, 30);
  const circle = { owner: base.owner, id: base.circleId, members: base.members };
  const ids = [await requestSettlementId(app, base.owner, base.project.id)];
  // Five at once: as many as the test's connection pool holds, so none waits for a connection.
  for (const pool of [2_001, 3_002, 4_003, 5_004]) {
    const p = await projectWithContributors(app, pool, 0, circle);
    ids.push(await requestSettlementId(app, base.owner, p.project.id));
  }
  // Every settlement books to the same circle funding account and the same 30 member accounts.
  const outcomes = await Promise.allSettled(ids.map((id) => settleProject(db, id)));
  t.same(
    outcomes.map((o) => (o.status === 'fulfilled' ? o.value : String(o.reason))),
    ids.map(() => 'completed'),
    'each completed on its first attempt',
  );
  const funding = await db
    .selectFrom('ledger_accounts')
    .select('balance')
    .where('kind', '=', 'owner_funding')
    .executeTakeFirstOrThrow();
  t.equal(funding.balance, -(1_000 + 2_001 + 3_002 + 4_003 + 5_004), 'the circle funded every pool');
  for (const id of ids)
    t.equal(
      (await db.selectFrom('settlements').select('result_hash').where('id', '=', id).executeTakeFirstOrThrow())
        .result_hash,
      await recomputeHash(db, id),
    );
  await assertInvariants(t, db);
});

onEachQueueBackend(
  t,
  'the queue store flushed after the request: the outbox relay and the requeue sweep still settle it',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const a = await projectWithContributors(app, 999, 5);
    const b = await projectWithContributors(app, 1_234, 0, { owner: a.owner, id: a.circleId, members: a.members });

    // a: requested with no worker running, then the store loses everything; its outbox event is still unrelayed.
    const viaRelay = await requestSettlementId(app, a.owner, a.project.id);
    // b: its event was relayed (the job reached the store) before the store lost everything: only the sweep can save it.
    const viaSweep = await requestSettlementId(app, a.owner, b.project.id);
    const queues = producers(t, config);
    await sql`UPDATE events SET relayed_at = now() WHERE subject_id <> ${viaRelay}::uuid`.execute(db);
    t.ok(await queues.get('settlements').getJob(storedJobId(settlementJobKey(viaSweep))), 'the jobs were in the store');
    await flushQueueStore(config);
    t.equal(await queues.get('settlements').getJob(storedJobId(settlementJobKey(viaSweep))), undefined, 'and are gone');
    t.equal(await queues.get('settlements').getJob(storedJobId(settlementJobKey(viaRelay))), undefined);

    await startWorkers(t, config);
    t.equal(await waitForSettled(db, viaRelay, 30_000), 'completed', 'the relay re-enqueued the unrelayed request');
    t.equal(await waitForSettled(db, viaSweep, 30_000), 'completed', 'the sweep re-enqueued the pending settlement');
    for (const id of [viaRelay, viaSweep]) {
      t.match(await settlementFootprint(db, id), { payouts: 5, payees: 5, ledgerTransactions: 2, completedEvents: 1 });
      t.equal(
        (await db.selectFrom('settlements').select('result_hash').where('id', '=', id).executeTakeFirstOrThrow())
          .result_hash,
        await recomputeHash(db, id),
      );
    }
    const unrelayed = await db
      .selectFrom('events')
      .select('id')
      .where('relayed_at', 'is', null)
      .where('type', '=', 'settlement.requested')
      .execute();
    t.same(unrelayed, [], 'the relay marked the request relayed');
    await assertInvariants(t, db);
  },
);

onEachQueueBackend(
  t,
  'a settlement whose job failed in the queue store without settling it (e.g. stalled too often) is requeued by the sweep',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const a = await projectWithContributors(app, 500, 4);
    const id = await requestSettlementId(app, a.owner, a.project.id);

    // Something other than the processor fails the job for good: BullMQ does this to a job whose
    // worker died more than maxStalledCount times; the settlement row never heard of it.
    const saboteur = saboteurWorker(t, config, 'settlements');
    const queues = producers(t, config);
    const failedJob = await failedRun(queues.get('settlements'), storedJobId(settlementJobKey(id)), 1);
    await saboteur.close();
    t.equal(await failedJob.getState(), 'failed', 'the job is failed in the store');
    t.equal(await settlementStatus(db, id), 'pending', 'while the settlement is still pending');

    await startWorkers(t, config);
    t.equal(
      await waitForSettled(db, id, 30_000),
      'completed',
      'the sweep gave the job a new life and the settlement completed',
    );
    t.match(await settlementFootprint(db, id), { payouts: 4, payees: 4, ledgerTransactions: 2, completedEvents: 1 });
    await assertInvariants(t, db);
  },
);

onEachQueueBackend(
  t,
  'a settlement whose job keeps ending without settling is retried a few times by the sweep, then failed',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const a = await projectWithContributors(app, 500, 2);
    const id = await requestSettlementId(app, a.owner, a.project.id);
    // Every run of its job dies as a worker killed mid-job does, more often than BullMQ allows.
    saboteurWorker(t, config, 'settlements');
    const queues = producers(t, config);
    const key = storedJobId(settlementJobKey(id));
    const ctx = { db, queues, log: app.log };
    await failedRun(queues.get('settlements'), key, 1);
    for (let retry = 1; retry <= MAX_SWEEP_RETRIES; retry++) {
      t.equal(await requeueUnfinishedSettlements(ctx, 0), 1, `sweep ${retry} retries it`);
      await failedRun(queues.get('settlements'), key, retry + 1);
      t.equal(await settlementStatus(db, id), 'pending');
    }
    t.equal(await requeueUnfinishedSettlements(ctx, 0), 1, 'the next sweep gives it up');
    t.equal(await settlementStatus(db, id), 'failed');
    t.same(await eventTypes(db, id), ['settlement.requested', 'settlement.failed']);
    t.equal(await requeueUnfinishedSettlements(ctx, 0), 0, 'and no sweep takes it up again');
    const view = await call(app, 'GET', `/v1/settlements/${id}`, { token: a.owner.token });
    t.match(view.body, { status: 'failed', failureReason: FAILURE_REASON });
    const statement = await call(app, 'GET', `/v1/settlements/${id}/statements/${a.owner.id}`, {
      token: a.owner.token,
    });
    t.match(statement.body, { status: 'failed', explanation: /failed and paid nothing out/ }, 'no payout is promised');
    await assertInvariants(t, db);
  },
);

onEachQueueBackend(
  t,
  'a settlement failing every attempt ends failed with its reason and an event; the project can be settled again',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const a = await projectWithContributors(app, 600, 3);
    const id = await requestSettlementId(app, a.owner, a.project.id);
    // Replace the request path's job with one allowed two quick attempts.
    await flushQueueStore(config);
    await sql`UPDATE events SET relayed_at = now()`.execute(db);
    // A fault only this settlement meets, every time: the payouts table refuses its rows.
    await sql`
    CREATE FUNCTION refuse_payouts() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'payouts table is read-only for maintenance'; END $$;
    CREATE TRIGGER refuse_payouts BEFORE INSERT ON payouts FOR EACH ROW
      WHEN (NEW.settlement_id = '${sql.raw(id)}') EXECUTE FUNCTION refuse_payouts();`.execute(db);
    const queues = await processorWorkers(t, db, config);
    await queues.add(
      'settlements',
      { settlementId: id },
      { jobId: settlementJobKey(id), attempts: 2, backoff: { type: 'fixed', delay: 50 } },
    );
    const job = await finishedJob(queues.get('settlements'), storedJobId(settlementJobKey(id)));
    t.equal(job.attemptsMade, 2, 'both attempts ran');
    t.match(job.failedReason, /read-only for maintenance/);

    const row = await db.selectFrom('settlements').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    t.match(row, {
      status: 'failed',
      failure_reason: FAILURE_REASON,
      result_hash: null,
      completed_at: null,
    });
    t.same(
      await settlementFootprint(db, id),
      { payouts: 0, payees: 0, paid: 0, ledgerTransactions: 0, ledgerEntries: 0, completedEvents: 0 },
      'a failed attempt leaves nothing behind',
    );
    t.same(await eventTypes(db, id), ['settlement.requested', 'settlement.failed']);
    const failed = await db
      .selectFrom('events')
      .select('payload')
      .where('subject_id', '=', id)
      .where('type', '=', 'settlement.failed')
      .executeTakeFirstOrThrow();
    t.same(failed.payload, { projectId: a.project.id, reason: FAILURE_REASON });
    // A payload no settlement can match fails at once, without ten attempts of backoff.
    await queues.add('settlements', { settlementId: 'not-a-settlement' }, { jobId: settlementJobKey('bogus') });
    const bogus = await finishedJob(queues.get('settlements'), storedJobId(settlementJobKey('bogus')));
    t.match(bogus, { attemptsMade: 1, failedReason: /invalid settlement id "not-a-settlement"/ });
    const view = await call(app, 'GET', `/v1/settlements/${id}`, { token: a.members[0]!.token });
    t.match(view.body, { status: 'failed', failureReason: FAILURE_REASON, payouts: [], resultHash: null });
    t.notMatch(
      JSON.stringify(view.body),
      /read-only|payouts table/,
      'the cause (a table, here) is not shown to members',
    );

    // The fault is repaired; the project, still frozen, can be settled by a new request.
    await sql`DROP TRIGGER refuse_payouts ON payouts`.execute(db);
    t.equal(
      (await call(app, 'GET', `/v1/projects/${a.project.id}`, { token: a.owner.token })).body.status,
      'settled',
      'the project stays frozen',
    );
    t.ok(
      isProblem(
        await call(app, 'POST', `/v1/projects/${a.project.id}/adjustments`, {
          token: a.owner.token,
          body: { userId: a.members[0]!.id, points: 1, reason: 'x' },
        }),
        409,
        'project_settled',
      ),
    );
    const again = await requestSettlement(app, a.owner, a.project.id);
    t.equal(again.status, 202, 'a failed settlement can be requested again');
    t.not(again.body.id, id);
    t.ok(isProblem(await requestSettlement(app, a.owner, a.project.id), 409, 'already_settled'), 'but only once');
    t.same(
      (await eventTypes(db, a.project.id)).filter((type) => type === 'project.settled'),
      ['project.settled'],
      'the project was frozen, and announced, once',
    );
    t.equal(await waitForSettled(db, again.body.id, 30_000), 'completed');
    t.match(await settlementFootprint(db, again.body.id), {
      payouts: 3,
      payees: 3,
      paid: 600,
      ledgerTransactions: 2,
      completedEvents: 1,
    });
    t.equal(
      (await db.selectFrom('settlements').select('cutoff_id').where('id', '=', again.body.id).executeTakeFirstOrThrow())
        .cutoff_id,
      row.cutoff_id,
      'over the same frozen contributions',
    );
    await assertInvariants(t, db);
  },
);
