import t from 'tap';
import { claimExpiryProcessor } from '../../src/claims/claim-expiry.job.js';
import { buildTestApp, call, createCircle, isProblem, registerUser } from '../helper.js';
import { claimExpiryJobId, claimTask, eventTypes, joinMembers, projectWithTask, queueHandle, startWorkers, submitWork, waitFor } from '../marketplace-helpers.js';

// Leases run out: a delayed BullMQ job expires the claim at its deadline, and the periodic sweep
// expires any claim whose job was lost. Real workers, real Redis; outcomes are polled with a
// bounded wait, never timed.

const claimStatus = async (app: Parameters<typeof call>[0], token: string, claimId: string) =>
  (await call(app, 'GET', `/v1/claims/${claimId}`, { token })).body.status as string;

t.test('a lease runs out: the claim expires, its slot is free again, and it can no longer submit', async (t) => {
  const { app, db, config } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const { task } = await projectWithTask(app, owner, circle.id, {}, { leaseSeconds: 1 });
  await startWorkers(t, config);

  const claim = await claimTask(app, alice!, task.id);
  t.equal(claim.status, 201);
  t.ok(isProblem(await claimTask(app, bob!, task.id), 409, 'task_full'), 'held while the lease runs');

  const status = await waitFor(async () => ((await claimStatus(app, alice!.token, claim.body.id)) === 'expired' ? 'expired' : null));
  t.equal(status, 'expired', 'expired shortly after its deadline');
  const row = await db.selectFrom('tasks').select('live_claims').where('id', '=', task.id).executeTakeFirstOrThrow();
  t.equal(row.live_claims, 0, 'the slot is free');
  t.ok(isProblem(await submitWork(app, alice!, claim.body.id), 409, 'claim_expired'));
  t.ok(isProblem(await call(app, 'POST', `/v1/claims/${claim.body.id}/extend`, { token: alice!.token, body: {} }), 409, 'claim_not_active'));
  t.ok(isProblem(await call(app, 'POST', `/v1/claims/${claim.body.id}/release`, { token: alice!.token }), 409, 'claim_not_active'));

  const retaken = await claimTask(app, bob!, task.id);
  t.equal(retaken.status, 201, 'another member can claim it now');
  t.same(await eventTypes(db, claim.body.id), ['claim.created', 'claim.expired']);
  const expired = await db.selectFrom('events').select(['actor_id', 'payload']).where('type', '=', 'claim.expired').executeTakeFirstOrThrow();
  t.same(expired, { actor_id: null, payload: { taskId: task.id, projectId: claim.body.projectId, userId: alice!.id } });
});

t.test('an active claim past its deadline cannot submit even before the workers expire it', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice] = await joinMembers(app, circle.id, 1);
  const { task } = await projectWithTask(app, owner, circle.id, {}, { leaseSeconds: 1 });

  const claim = await claimTask(app, alice!, task.id);
  await waitFor(async () => new Date(claim.body.expiresAt).getTime() < Date.now() - 50);
  t.ok(isProblem(await submitWork(app, alice!, claim.body.id), 409, 'claim_expired'));
  t.ok(isProblem(await call(app, 'POST', `/v1/claims/${claim.body.id}/extend`, { token: alice!.token, body: {} }), 409, 'claim_not_active'));
  const row = await db.selectFrom('claims').select('status').where('id', '=', claim.body.id).executeTakeFirstOrThrow();
  t.equal(row.status, 'active', 'no worker ran: still active in the table, but refused');
});

t.test('the claim-expiry job: scheduled at the deadline, expires once, a no-op when run again', async (t) => {
  const { app, db, config } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice] = await joinMembers(app, circle.id, 1);
  const { task } = await projectWithTask(app, owner, circle.id, {}, { leaseSeconds: 1 });
  const queue = queueHandle(t, config, 'claim-expiry');

  const claim = await claimTask(app, alice!, task.id);
  const job = await queue.getJob(claimExpiryJobId(claim.body.id, claim.body.expiresAt));
  t.ok(job, 'a delayed job keyed by claim and deadline');
  t.same(job!.data, { claimId: claim.body.id });
  t.equal(await job!.getState(), 'delayed');

  const ctx = { db, queues: app.queues, config, log: app.log };
  t.same(await claimExpiryProcessor({ claimId: claim.body.id }, ctx, job!), { expired: 0 }, 'before the deadline it changes nothing');
  await waitFor(async () => new Date(claim.body.expiresAt).getTime() < Date.now() - 50);
  t.same(await claimExpiryProcessor({ claimId: claim.body.id }, ctx, job!), { expired: 1 });
  t.same(await claimExpiryProcessor({ claimId: claim.body.id }, ctx, job!), { expired: 0 }, 'running it twice is harmless');
  const row = await db.selectFrom('tasks').select('live_claims').where('id', '=', task.id).executeTakeFirstOrThrow();
  t.equal(row.live_claims, 0, 'the slot was freed exactly once');
});

t.test('with the delayed job lost, the sweep still expires the claim', async (t) => {
  const { app, db, config } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const { task } = await projectWithTask(app, owner, circle.id, {}, { leaseSeconds: 1 });
  const queue = queueHandle(t, config, 'claim-expiry');

  const claim = await claimTask(app, alice!, task.id);
  const jobId = claimExpiryJobId(claim.body.id, claim.body.expiresAt);
  t.equal(await queue.remove(jobId), 1, 'the delayed job is removed from Redis');
  t.equal(await queue.getJob(jobId), undefined);
  t.equal(await queue.count(), 0, 'no expiry job left at all');

  await startWorkers(t, config);
  const status = await waitFor(async () => ((await claimStatus(app, alice!.token, claim.body.id)) === 'expired' ? 'expired' : null));
  t.equal(status, 'expired', 'the sweep expired it');
  t.equal(await queue.getJob(jobId), undefined, 'the job never came back: it was the sweep');
  t.equal((await claimTask(app, bob!, task.id)).status, 201, 'the slot is free again');
  t.same(await eventTypes(db, claim.body.id), ['claim.created', 'claim.expired']);
});
