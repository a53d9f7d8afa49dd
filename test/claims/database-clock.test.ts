import t, { type Test } from 'tap';
import { sql } from 'kysely';
import { skewHostClock } from '../clock.js';
import { buildTestApp, call, createCircle, isProblem, registerUser } from '../helper.js';
import { addTasks, claimTask, createProject, joinMembers, submitWork } from '../marketplace-helpers.js';
import { acceptIfOverdue } from '../../src/reviews/reviews.service.js';
import { claimExpiryProcessor, expiryDueAt } from '../../src/claims/claim-expiry.job.js';

// Whether a lease or a review window has run out is decided by the database's clock, the one the
// expiry and auto-accept jobs use, never by the clock of the host serving the request: a skewed
// API host must not accept work on a lease the jobs consider over, nor refuse it on one they do not.

async function claimed(t: Test) {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [member] = await joinMembers(app, circle.id, 1);
  const project = await createProject(app, owner, circle.id, { leaseSeconds: 3600 });
  const [task] = await addTasks(app, owner, project.id, [{ title: 'Work' }]);
  const claim = await claimTask(app, member!, task!.id);
  t.equal(claim.status, 201);
  return { app, db, owner, member: member!, claimId: claim.body.id as string };
}

t.test('a host clock running ahead does not end a lease the database says is live', async (t) => {
  const { app, member, claimId } = await claimed(t);
  skewHostClock(t, 2 * 3600_000);
  const extended = await call(app, 'POST', `/v1/claims/${claimId}/extend`, { token: member.token, body: {} });
  t.equal(extended.status, 200, 'extended');
  t.equal((await submitWork(app, member, claimId)).status, 201, 'and submitted');
});

t.test('a host clock running behind does not keep alive a lease the database says is over', async (t) => {
  const { app, db, member, claimId } = await claimed(t);
  await sql`UPDATE claims SET expires_at = now() - interval '1 second' WHERE id = ${claimId}`.execute(db);
  skewHostClock(t, -2 * 3600_000);
  const extended = await call(app, 'POST', `/v1/claims/${claimId}/extend`, { token: member.token, body: {} });
  t.ok(isProblem(extended, 409, 'claim_not_active'), 'not extended');
  t.ok(isProblem(await submitWork(app, member, claimId), 409, 'claim_expired'), 'nor submitted');
  t.equal(await db.selectFrom('submissions').select('id').executeTakeFirst(), undefined);
});

t.test('a submission whose window closed by the database clock is auto-accepted, whatever the host says', async (t) => {
  const { app, db, member, claimId } = await claimed(t);
  const submitted = await submitWork(app, member, claimId);
  t.equal(submitted.status, 201);
  skewHostClock(t, 2 * 3600_000);
  t.equal(await acceptIfOverdue(db, submitted.body.id), false, 'a host running ahead does not close it early');
  await sql`UPDATE submissions SET review_due_at = now() - interval '1 second'`.execute(db);
  skewHostClock(t, -2 * 3600_000);
  t.equal(await acceptIfOverdue(db, submitted.body.id), true, 'a host running behind does not keep it open');
  t.match(await db.selectFrom('claims').select('status').executeTakeFirst(), { status: 'accepted' });
});

t.test('an expiry job run a little before its second ends by the database clock waits for it', async (t) => {
  // What a job promoted by a worker whose clock runs ahead does: it fires before Postgres says the
  // lease is over. Ended there, it would leave the lease to the sweep, holding its slot meanwhile.
  const { app, db, claimId } = await claimed(t);
  const { rows } = await sql<{ expires_at: Date }>`
    UPDATE claims SET expires_at = now() + interval '2 seconds' WHERE id = ${claimId}::uuid RETURNING expires_at`.execute(
    db,
  );
  const ctx = { db, queues: app.queues, config: app.config, log: app.log };
  const result = await claimExpiryProcessor({ dueAt: expiryDueAt(rows[0]!.expires_at) }, ctx, undefined as never);
  t.same(result, { expired: 1 }, 'the lease of its second expired, not left to the sweep');
  const claim = await db.selectFrom('claims').select('status').where('id', '=', claimId).executeTakeFirstOrThrow();
  t.equal(claim.status, 'expired');
});
