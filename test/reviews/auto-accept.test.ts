import t from 'tap';
import { sql } from 'kysely';
import { storedJobId } from '../../src/jobs/queues.js';
import { reviewDeadlineProcessor, sweepOverdueSubmissions } from '../../src/reviews/review-deadline.job.js';
import { buildTestApp, call, createCircle, onEachQueueBackend, queueBackendEnv, registerUser } from '../helper.js';
import {
  enqueuedJob,
  finishedJob,
  claimTask,
  joinMembers,
  projectWithTask,
  queueHandle,
  review,
  startWorkers,
  submitWork,
  waitFor,
} from '../marketplace-helpers.js';

// Work nobody reviews within the project's review window is accepted automatically at score 100:
// by a delayed job at the deadline, or by the sweep when that job was lost.

const acceptedAutomatically = async (app: Parameters<typeof call>[0], token: string, claimId: string) => {
  const history = await call(app, 'GET', `/v1/claims/${claimId}/submissions`, { token });
  const last = history.body.items.at(-1);
  return last?.review?.automatic ? last.review : null;
};

onEachQueueBackend(
  t,
  'after the review window, the workers accept the submission automatically',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [alice] = await joinMembers(app, circle.id, 1);
    const { project, task } = await projectWithTask(app, owner, circle.id, { weight: 4 }, { reviewWindowSeconds: 1 });
    await startWorkers(t, config);

    const claim = await claimTask(app, alice!, task.id);
    const submission = await submitWork(app, alice!, claim.body.id);
    t.equal(submission.status, 201);
    const auto = await waitFor(() => acceptedAutomatically(app, alice!.token, claim.body.id));
    t.match(auto, { decision: 'accept', score: 100, reviewerId: null, automatic: true });
    t.equal((await call(app, 'GET', `/v1/claims/${claim.body.id}`, { token: alice!.token })).body.status, 'accepted');
    t.match((await call(app, 'GET', `/v1/tasks/${task.id}`, { token: alice!.token })).body, {
      status: 'done',
      liveClaims: 0,
    });

    const contributions = await db
      .selectFrom('contributions')
      .select(['user_id', 'points', 'source', 'created_by', 'claim_id'])
      .execute();
    t.same(contributions, [
      { user_id: alice!.id, points: 400, source: 'task', created_by: null, claim_id: claim.body.id },
    ]);
    const totals = await call(app, 'GET', `/v1/projects/${project.id}/contributions`, { token: owner.token });
    t.match(totals.body.items, [{ userId: alice!.id, points: 400, acceptedTasks: 1 }]);
    const events = await db
      .selectFrom('events')
      .select(['type', 'actor_id', 'payload'])
      .where('type', 'in', ['review.created', 'contribution.recorded', 'task.completed'])
      .orderBy('type')
      .execute();
    t.match(events, [
      { type: 'contribution.recorded', actor_id: null, payload: { points: 400, source: 'task' } },
      { type: 'review.created', actor_id: null, payload: { decision: 'accept', automatic: true } },
      { type: 'task.completed', actor_id: null },
    ]);

    await app.queues.add('review-deadline', { submissionId: 'not-an-id' }, { jobId: 'bogus' });
    const bogus = await finishedJob(app.queues.get('review-deadline'), 'bogus');
    t.match(bogus.failedReason, /invalid submission id/);
    t.equal(bogus.attemptsMade, 1, 'a payload no attempt can use is not retried');
  },
);

onEachQueueBackend(t, 'with the review-deadline job removed, the sweep accepts it', async (t, backend) => {
  const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice] = await joinMembers(app, circle.id, 1);
  const { task } = await projectWithTask(app, owner, circle.id, {}, { reviewWindowSeconds: 1 });
  const queue = queueHandle(t, config, 'review-deadline');

  const claim = await claimTask(app, alice!, task.id);
  const submission = await submitWork(app, alice!, claim.body.id);
  const jobId = storedJobId(`submission:${submission.body.id}`);
  const job = await enqueuedJob(queue, jobId);
  t.ok(job, 'a delayed job keyed by the submission');
  t.same(job!.data, { submissionId: submission.body.id });
  t.equal(await queue.remove(jobId), 1, 'removed from the queue store');
  t.equal(await queue.count(), 0);

  await startWorkers(t, config);
  const auto = await waitFor(() => acceptedAutomatically(app, alice!.token, claim.body.id));
  t.match(auto, { decision: 'accept', automatic: true }, 'the sweep accepted it');
  t.equal(await queue.getJob(jobId), undefined, 'not by the job');
  const contributions = await db.selectFrom('contributions').select('points').execute();
  t.same(contributions, [{ points: 100 }]);
});

t.test('the deadline job does nothing before the deadline, after a human review, or for a revised claim', async (t) => {
  const { app, db, config } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const ctx = { db, queues: app.queues, config, log: app.log };
  const queue = queueHandle(t, config, 'review-deadline');
  const { task } = await projectWithTask(
    app,
    owner,
    circle.id,
    { slots: 2, requiredAccepts: 2 },
    { reviewWindowSeconds: 1 },
  );

  // Reviewed by a human in time: the job later finds nothing to do.
  const reviewed = await claimTask(app, alice!, task.id);
  const s1 = await submitWork(app, alice!, reviewed.body.id);
  const job = (await enqueuedJob(queue, `submission_${s1.body.id}`))!;
  // Well before its deadline (a run within seconds of it waits it out, below).
  await sql`UPDATE submissions SET review_due_at = now() + interval '1 hour' WHERE id = ${s1.body.id}::uuid`.execute(
    db,
  );
  t.same(await reviewDeadlineProcessor({ submissionId: s1.body.id }, ctx, job), { accepted: false }, 'not due yet');
  t.equal((await review(app, owner, reviewed.body.id, { decision: 'accept', score: 50 })).status, 201);

  // Sent back for revision: the claim is active again, so the old deadline accepts nothing.
  const revised = await claimTask(app, bob!, task.id);
  const s2 = await submitWork(app, bob!, revised.body.id);
  t.equal((await review(app, owner, revised.body.id, { decision: 'revise', feedback: 'More detail' })).status, 201);

  await waitFor(async () => Date.now() > new Date(s2.body.reviewDueAt).getTime() + 50);
  t.same(
    await reviewDeadlineProcessor({ submissionId: s1.body.id }, ctx, job),
    { accepted: false },
    'already reviewed',
  );
  t.same(
    await reviewDeadlineProcessor({ submissionId: s2.body.id }, ctx, job),
    { accepted: false },
    'revised, not waiting',
  );
  t.same(
    await reviewDeadlineProcessor({ submissionId: crypto.randomUUID() }, ctx, job),
    { accepted: false },
    'unknown submission',
  );
  t.equal(await sweepOverdueSubmissions(ctx), 0, 'nothing for the sweep either');

  // The revision is submitted and left unreviewed: it is accepted once its own window passes.
  const s3 = await submitWork(app, bob!, revised.body.id);
  t.equal(s3.body.revision, 2);
  await waitFor(async () => Date.now() > new Date(s3.body.reviewDueAt).getTime() + 50);
  t.same(
    await reviewDeadlineProcessor({ submissionId: s2.body.id }, ctx, job),
    { accepted: false },
    'the old revision never counts',
  );
  t.equal(await sweepOverdueSubmissions(ctx), 1);
  t.same(
    await reviewDeadlineProcessor({ submissionId: s3.body.id }, ctx, job),
    { accepted: false },
    'running it again is harmless',
  );

  const rows = await db.selectFrom('contributions').select(['user_id', 'points']).orderBy('id').execute();
  t.same(rows, [
    { user_id: alice!.id, points: 50 },
    { user_id: bob!.id, points: 100 },
  ]);
  t.match((await call(app, 'GET', `/v1/tasks/${task.id}`, { token: owner.token })).body, {
    status: 'done',
    acceptedCount: 2,
    liveClaims: 0,
  });
});

t.test('a deadline job run a little before the deadline by the database clock waits for it', async (t) => {
  // What a job from a host whose clock runs ahead does: it fires before Postgres says the window
  // has closed. Ended there, it would leave the work to the next sweep.
  const { app, db, config } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice] = await joinMembers(app, circle.id, 1);
  const ctx = { db, queues: app.queues, config, log: app.log };
  const { task } = await projectWithTask(app, owner, circle.id, {}, { reviewWindowSeconds: 3600 });
  const claim = await claimTask(app, alice!, task.id);
  const submission = await submitWork(app, alice!, claim.body.id);
  await sql`UPDATE submissions SET review_due_at = now() + interval '3 seconds' WHERE id = ${submission.body.id}::uuid`.execute(
    db,
  );
  const job = (await enqueuedJob(queueHandle(t, config, 'review-deadline'), `submission_${submission.body.id}`))!;
  t.same(
    await reviewDeadlineProcessor({ submissionId: submission.body.id }, ctx, job),
    { accepted: true },
    'accepted at the deadline, not left to the sweep',
  );
  t.match(await acceptedAutomatically(app, alice!.token, claim.body.id), { decision: 'accept', automatic: true });
});
