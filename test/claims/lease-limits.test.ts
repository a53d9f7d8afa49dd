import t from 'tap';
import { buildTestApp, call, createCircle, isProblem, registerUser } from '../helper.js';
import {
  enqueuedJob,
  addTasks,
  claimExpiryJobId,
  claimNext,
  claimTask,
  createProject,
  eventTypes,
  joinMembers,
  queueHandle,
  review,
  submitWork,
} from '../marketplace-helpers.js';

// MAX_LEASE_SECONDS bounds every lease from its start: the first lease of a claim (claim and
// claims/next) and the fresh lease a revise starts, as it bounds extensions. A project's lease
// length longer than that setting gets the setting.

const MAX = 300;

/** How long a claim's lease runs from its start, in seconds. */
const leaseLength = (claim: { expiresAt: string; leaseStartedAt: string }) =>
  (new Date(claim.expiresAt).getTime() - new Date(claim.leaseStartedAt).getTime()) / 1000;

async function scene(t: Parameters<typeof buildTestApp>[0], leaseSeconds: number) {
  const { app, db, config } = await buildTestApp(t, { MAX_LEASE_SECONDS: String(MAX) });
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const project = await createProject(app, owner, circle.id, { leaseSeconds });
  const [task, second] = await addTasks(app, owner, project.id, [{ title: 'First' }, { title: 'Second' }]);
  return { app, db, config, owner, alice: alice!, bob: bob!, project, task: task!, second: second! };
}

t.test('the first lease of a claim is capped at MAX_LEASE_SECONDS, by claim and by claims/next', async (t) => {
  const { app, config, alice, bob, project, task, second } = await scene(t, 3600);
  const queue = queueHandle(t, config, 'claim-expiry');

  const claimed = await claimTask(app, alice, task.id);
  t.equal(claimed.status, 201);
  t.equal(leaseLength(claimed.body), MAX, 'a 3600 s project lease runs 300 s');
  t.ok(
    await enqueuedJob(queue, claimExpiryJobId(claimed.body.expiresAt)),
    'its expiry job is due at the capped deadline',
  );
  t.ok(
    isProblem(
      await call(app, 'POST', `/v1/claims/${claimed.body.id}/extend`, { token: alice.token, body: { seconds: 3600 } }),
      409,
      'lease_limit_reached',
    ),
    'already at its longest: no extension beyond it',
  );

  const next = await claimNext(app, bob, project.id);
  t.equal(next.status, 201);
  t.equal(next.body.taskId, second.id);
  t.equal(leaseLength(next.body), MAX, 'claims/next caps it the same way');
});

t.test('a project lease shorter than MAX_LEASE_SECONDS is kept as it is', async (t) => {
  const { app, alice, project } = await scene(t, 120);
  const next = await claimNext(app, alice, project.id);
  t.equal(next.status, 201);
  t.equal(leaseLength(next.body), 120);
});

t.test('work sent back for changes runs on a fresh lease capped at MAX_LEASE_SECONDS', async (t) => {
  const { app, db, owner, alice, task } = await scene(t, 3600);
  const claim = await claimTask(app, alice, task.id);
  t.equal((await submitWork(app, alice, claim.body.id)).status, 201);
  const sentBack = await review(app, owner, claim.body.id, { decision: 'revise', feedback: 'Add the sources.' });
  t.equal(sentBack.status, 201);

  const revised = await call(app, 'GET', `/v1/claims/${claim.body.id}`, { token: alice.token });
  t.equal(revised.body.status, 'active');
  t.ok(revised.body.leaseStartedAt > claim.body.leaseStartedAt, 'a new lease period');
  t.equal(leaseLength(revised.body), MAX, 'the revise lease is capped like the first one');
  const row = await db
    .selectFrom('claims')
    .select(['expires_at', 'lease_started_at'])
    .where('id', '=', claim.body.id)
    .executeTakeFirstOrThrow();
  t.equal(row.expires_at.getTime() - row.lease_started_at.getTime(), MAX * 1000, 'as stored');
});

t.test('a heartbeat asking for less than the lease has left: 200, the claim unchanged, no event', async (t) => {
  const { app, db, alice, task } = await scene(t, 240);
  const claim = await claimTask(app, alice, task.id);
  const url = `/v1/claims/${claim.body.id}/extend`;

  const short = await call(app, 'POST', url, { token: alice.token, body: { seconds: 60 } });
  t.equal(short.status, 200);
  t.same(short.body, claim.body, 'the claim as it was: deadline, lease start and updatedAt unchanged');
  t.same(await eventTypes(db, claim.body.id), ['claim.created'], 'no claim.extended');

  // Longer than what is left is still an extension, capped at MAX_LEASE_SECONDS from the start.
  const longer = await call(app, 'POST', url, { token: alice.token, body: { seconds: 3600 } });
  t.equal(longer.status, 200);
  t.equal(leaseLength(longer.body), MAX);
  t.same(await eventTypes(db, claim.body.id), ['claim.created', 'claim.extended']);

  // At the cap, a short heartbeat is still answered 200 with the claim as it is.
  const again = await call(app, 'POST', url, { token: alice.token, body: { seconds: 10 } });
  t.equal(again.status, 200);
  t.same(again.body, longer.body);
  t.same(await eventTypes(db, claim.body.id), ['claim.created', 'claim.extended']);
});
