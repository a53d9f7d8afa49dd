import { sql } from 'kysely';
import t from 'tap';
import type { FastifyBaseLogger } from 'fastify';
import { claimExpiryProcessor, expiryDueAt, scheduleClaimExpiry } from '../../src/claims/claim-expiry.job.js';
import { Queues } from '../../src/jobs/queues.js';
import { openQueueConnection } from '../../src/jobs/queue-backend.js';
import type { Db } from '../../src/infra/postgres.js';
import {
  buildTestApp,
  call,
  createCircle,
  isProblem,
  onEachQueueBackend,
  queueBackendEnv,
  registerUser,
} from '../helper.js';
import {
  enqueuedJob,
  claimExpiryJobId,
  claimTask,
  eventTypes,
  joinMembers,
  projectWithTask,
  queueHandle,
  startWorkers,
  submitWork,
  waitFor,
} from '../marketplace-helpers.js';

// Leases run out: a delayed BullMQ job at the end of the deadline's second expires the claims due
// then, and the periodic sweep expires any claim whose job was lost. Real workers, real Redis; outcomes are polled with a
// bounded wait, never timed.

/** Moves leases' stored deadlines a second into the past (database time), as if they had run out. */
async function pastDeadline(db: Db, claimIds: string[]) {
  await db
    .updateTable('claims')
    .set({ expires_at: sql<Date>`now() - interval '1 second'` })
    .where('id', 'in', claimIds)
    .execute();
}

const claimStatus = async (app: Parameters<typeof call>[0], token: string, claimId: string) =>
  (await call(app, 'GET', `/v1/claims/${claimId}`, { token })).body.status as string;

onEachQueueBackend(
  t,
  'a lease runs out: the claim expires, its slot is free again, and it can no longer submit',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [alice, bob] = await joinMembers(app, circle.id, 2);
    const { task } = await projectWithTask(app, owner, circle.id, {}, { leaseSeconds: 1 });

    const claim = await claimTask(app, alice!, task.id);
    t.equal(claim.status, 201);
    // No worker runs yet, so the slot is held however long this takes on a loaded machine.
    t.ok(isProblem(await claimTask(app, bob!, task.id), 409, 'task_full'), 'held while the lease runs');
    await startWorkers(t, config);

    const status = await waitFor(async () =>
      (await claimStatus(app, alice!.token, claim.body.id)) === 'expired' ? 'expired' : null,
    );
    t.equal(status, 'expired', 'expired shortly after its deadline');
    const row = await db.selectFrom('tasks').select('live_claims').where('id', '=', task.id).executeTakeFirstOrThrow();
    t.equal(row.live_claims, 0, 'the slot is free');
    t.ok(isProblem(await submitWork(app, alice!, claim.body.id), 409, 'claim_expired'));
    t.ok(
      isProblem(
        await call(app, 'POST', `/v1/claims/${claim.body.id}/extend`, { token: alice!.token, body: {} }),
        409,
        'claim_not_active',
      ),
    );
    t.ok(
      isProblem(
        await call(app, 'POST', `/v1/claims/${claim.body.id}/release`, { token: alice!.token }),
        409,
        'claim_not_active',
      ),
    );

    const retaken = await claimTask(app, bob!, task.id);
    t.equal(retaken.status, 201, 'another member can claim it now');
    t.same(await eventTypes(db, claim.body.id), ['claim.created', 'claim.expired']);
    const expired = await db
      .selectFrom('events')
      .select(['actor_id', 'payload'])
      .where('type', '=', 'claim.expired')
      .executeTakeFirstOrThrow();
    t.same(expired, {
      actor_id: null,
      payload: { taskId: task.id, projectId: claim.body.projectId, userId: alice!.id },
    });
  },
);

t.test('an active claim past its deadline cannot submit even before the workers expire it', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice] = await joinMembers(app, circle.id, 1);
  const { task } = await projectWithTask(app, owner, circle.id, {}, { leaseSeconds: 3600 });

  const claim = await claimTask(app, alice!, task.id);
  await pastDeadline(db, [claim.body.id]);
  t.ok(isProblem(await submitWork(app, alice!, claim.body.id), 409, 'claim_expired'));
  t.ok(
    isProblem(
      await call(app, 'POST', `/v1/claims/${claim.body.id}/extend`, { token: alice!.token, body: {} }),
      409,
      'claim_not_active',
    ),
  );
  const row = await db.selectFrom('claims').select('status').where('id', '=', claim.body.id).executeTakeFirstOrThrow();
  t.equal(row.status, 'active', 'no worker ran: still active in the table, but refused');
});

onEachQueueBackend(
  t,
  'expiry jobs: one per deadline second, shared by the leases ending in it; a job expires every overdue lease once',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const members = await joinMembers(app, circle.id, 3);
    const { task } = await projectWithTask(app, owner, circle.id, { slots: 3 }, { leaseSeconds: 3600 });
    const queue = queueHandle(t, config, 'claim-expiry');

    const claims: { id: string; expiresAt: string }[] = [];
    for (const member of members) claims.push((await claimTask(app, member, task.id)).body);
    const jobIds = new Set(claims.map((c) => claimExpiryJobId(c.expiresAt)));
    for (const c of claims) {
      const job = await enqueuedJob(queue, claimExpiryJobId(c.expiresAt));
      t.ok(job, 'a delayed job for the second the lease ends in');
      t.equal(await job!.getState(), 'delayed');
      const late = job!.data.dueAt - new Date(c.expiresAt).getTime();
      t.ok(late >= 0 && late < 1000, `due at the end of the deadline's second (${late} ms after it)`);
    }
    // How many seconds the three deadlines fall in depends on how fast the claims ran; a second
    // shared by several leases, at chosen times, is the next test's.
    t.equal(await queue.getDelayedCount(), jobIds.size, 'one job per second, not one per claim');

    const job = (await queue.getJob([...jobIds][0]!))!;
    const ctx = { db, queues: app.queues, config, log: app.log };
    t.same(await claimExpiryProcessor(job.data, ctx, job), { expired: 0 }, 'before the deadlines it changes nothing');
    // Deadlines a second ahead in database time: a job that expired leases early would take them.
    await db
      .updateTable('claims')
      .set({ expires_at: sql<Date>`now() + interval '1 second'` })
      .where(
        'id',
        'in',
        claims.map((c) => c.id),
      )
      .execute();
    t.same(await claimExpiryProcessor(job.data, ctx, job), { expired: 0 }, 'nor a second before them');
    await pastDeadline(
      db,
      claims.map((c) => c.id),
    );
    t.same(
      await claimExpiryProcessor(job.data, ctx, job),
      { expired: 3 },
      'every overdue lease, whichever second it was due in',
    );
    t.same(await claimExpiryProcessor(job.data, ctx, job), { expired: 0 }, 'running it twice is harmless');
    const row = await db.selectFrom('tasks').select('live_claims').where('id', '=', task.id).executeTakeFirstOrThrow();
    t.equal(row.live_claims, 0, 'each slot was freed exactly once');
    for (const c of claims) t.same(await eventTypes(db, c.id), ['claim.created', 'claim.expired']);
  },
);

onEachQueueBackend(
  t,
  'a process enqueues the job for a second once, however many leases end in it',
  async (t, backend) => {
    const { app, config } = await buildTestApp(t, queueBackendEnv(backend));
    const queue = queueHandle(t, config, 'claim-expiry');
    const lease = (endsAt: number) => ({ id: crypto.randomUUID(), expires_at: new Date(endsAt) });

    // A request-path enqueue that fails is forgotten on purpose, so the next lease of that second
    // tries again (tested below). It fails at once while the fail-fast connection is not up, and
    // after its time limit when the store is slow: on a loaded machine both happen, the first for
    // seconds after the app starts. So each attempt first waits until the connection is up, and
    // the premise "the first enqueue succeeded" is observed: the scenario starts over on a later
    // second until it holds.
    const add = app.queues.add.bind(app.queues);
    let lastAdd: Promise<unknown> = Promise.resolve();
    app.queues.add = (...args: Parameters<typeof add>) => {
      const adding = add(...args);
      lastAdd = adding;
      return adding;
    };
    let dueAt = 0;
    for (let attempt = 1; ; attempt++) {
      t.ok(await app.queueConnection.waitUntilReady(60_000), 'the queue store connection is up');
      dueAt = expiryDueAt(new Date(Date.now() + 60_000 * attempt));
      await scheduleClaimExpiry(app.queues, app.log, lease(dueAt - 600));
      const failure = await lastAdd.then(
        () => null,
        (err: unknown) => String(err),
      );
      if (failure === null) break;
      t.comment(`the first enqueue of ${new Date(dueAt).toISOString()} failed (${failure}); another second`);
      t.ok(attempt < 10, 'an enqueue finishes in time within ten tries');
      if (attempt >= 10) return;
    }
    const jobId = claimExpiryJobId(new Date(dueAt - 600).toISOString());
    t.equal(await queue.remove(jobId), 1, 'the first lease of the second enqueued its job (removed here)');
    await scheduleClaimExpiry(app.queues, app.log, lease(dueAt - 100));
    t.equal(await queue.getJob(jobId), undefined, 'a later lease in the same second did not enqueue again');
    await scheduleClaimExpiry(app.queues, app.log, lease(dueAt + 1));
    t.ok(
      await queue.getJob(claimExpiryJobId(new Date(dueAt + 1).toISOString())),
      'a lease in the next second enqueues that second',
    );
  },
);

onEachQueueBackend(
  t,
  'an expiry job that could not be enqueued is tried again by the next lease ending in that second',
  async (t, backend) => {
    // Nothing listens on port 1: the queue store is unreachable.
    const config = {
      queueBackend: backend,
      redisUrl: backend === 'redis' ? 'redis://127.0.0.1:1' : null,
      databaseUrl: 'postgres://postgres@127.0.0.1:1/none',
    };
    const down = openQueueConnection(config, 'request');
    t.teardown(() => down.close());
    const queues = new Queues(down, `ca_test_${crypto.randomUUID()}`, true);
    const warnings: unknown[] = [];
    const log = { warn: (details: unknown) => warnings.push(details) } as unknown as FastifyBaseLogger;
    const expiresAt = new Date(Date.now() + 60_000);
    await scheduleClaimExpiry(queues, log, { id: crypto.randomUUID(), expires_at: expiresAt });
    await scheduleClaimExpiry(queues, log, { id: crypto.randomUUID(), expires_at: expiresAt });
    t.equal(warnings.length, 2, 'both claims tried to enqueue and were told the sweep will expire them');
    t.match(warnings[1], { dueAt: expiryDueAt(expiresAt) });
    await queues.close();
  },
);

onEachQueueBackend(t, 'with the delayed job lost, the sweep still expires the claim', async (t, backend) => {
  const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const { task } = await projectWithTask(app, owner, circle.id, {}, { leaseSeconds: 1 });
  const queue = queueHandle(t, config, 'claim-expiry');

  const claim = await claimTask(app, alice!, task.id);
  const jobId = claimExpiryJobId(claim.body.expiresAt);
  t.equal(await queue.remove(jobId), 1, 'the delayed job is removed from the queue store');
  t.equal(await queue.getJob(jobId), undefined);
  t.equal(await queue.count(), 0, 'no expiry job left at all');

  await startWorkers(t, config);
  const status = await waitFor(async () =>
    (await claimStatus(app, alice!.token, claim.body.id)) === 'expired' ? 'expired' : null,
  );
  t.equal(status, 'expired', 'the sweep expired it');
  t.equal(await queue.getJob(jobId), undefined, 'the job never came back: it was the sweep');
  t.equal((await claimTask(app, bob!, task.id)).status, 201, 'the slot is free again');
  t.same(await eventTypes(db, claim.body.id), ['claim.created', 'claim.expired']);
});
