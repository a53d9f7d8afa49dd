import t from 'tap';
import { buildTestApp, call, createCircle, isProblem, registerUser } from '../helper.js';
import {
  addTasks,
  circleWithRoles,
  claimTask,
  countRows,
  createProject,
  eventTypes,
  joinMembers,
  projectWithTask,
  review,
  submitWork,
} from '../marketplace-helpers.js';

// Submitting work and reviewing it: who may, the decisions and what each one changes.

t.test('submissions: only the claimant submits, with valid content', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const outsider = await registerUser(app, 'outsider');
  const { task } = await projectWithTask(app, owner, circle.id, {}, { reviewWindowSeconds: 3600 });
  const claim = await claimTask(app, alice!, task.id);
  const url = `/v1/claims/${claim.body.id}/submissions`;

  t.ok(isProblem(await call(app, 'POST', url, { token: bob!.token, body: { content: 'x' } }), 403, 'forbidden'));
  t.ok(isProblem(await call(app, 'POST', url, { token: owner.token, body: { content: 'x' } }), 403, 'forbidden'));
  t.ok(
    isProblem(await call(app, 'POST', url, { token: outsider.token, body: { content: 'x' } }), 404, 'claim_not_found'),
  );
  for (const body of [
    {},
    { content: '' },
    { content: 'x', links: ['not a url'] },
    { content: 'x', extra: 1 },
    { content: 5 },
  ]) {
    t.ok(
      isProblem(await call(app, 'POST', url, { token: alice!.token, body }), 400, 'invalid_request'),
      JSON.stringify(body),
    );
  }

  const res = await call(app, 'POST', url, {
    token: alice!.token,
    body: { content: 'Done: see the link', links: ['https://example.com/pr/1'] },
  });
  t.equal(res.status, 201);
  t.match(res.body, {
    claimId: claim.body.id,
    revision: 1,
    content: 'Done: see the link',
    links: ['https://example.com/pr/1'],
  });
  const due = new Date(res.body.reviewDueAt).getTime() - new Date(res.body.createdAt).getTime();
  t.ok(Math.abs(due - 3600_000) < 1000, 'due one review window after submission');
  t.equal((await call(app, 'GET', `/v1/claims/${claim.body.id}`, { token: alice!.token })).body.status, 'submitted');
  t.ok(
    isProblem(
      await call(app, 'POST', url, { token: alice!.token, body: { content: 'again' } }),
      409,
      'claim_not_active',
    ),
    'one submission per turn',
  );
  t.same(await eventTypes(db, res.body.id), ['submission.created']);
});

t.test('who may review: managers, never their own claim; only submitted work', async (t) => {
  const { app } = await buildTestApp(t);
  const {
    owner,
    circle,
    admin,
    members: [alice, bob],
    outsider,
  } = await circleWithRoles(app, { members: 2 });
  const { project, task } = await projectWithTask(app, owner, circle.id, { slots: 3, requiredAccepts: 3 });

  const own = await claimTask(app, owner, task.id);
  await submitWork(app, owner, own.body.id);
  t.ok(isProblem(await review(app, owner, own.body.id, { decision: 'accept' }), 403, 'forbidden'), 'no self-review');
  t.equal(
    (await review(app, admin, own.body.id, { decision: 'accept' })).status,
    201,
    "an admin reviews the owner's work",
  );

  const claim = await claimTask(app, alice!, task.id);
  t.ok(
    isProblem(await review(app, owner, claim.body.id, { decision: 'accept' }), 409, 'claim_not_submitted'),
    'an active claim',
  );
  await submitWork(app, alice!, claim.body.id);
  t.ok(
    isProblem(await review(app, bob!, claim.body.id, { decision: 'accept' }), 403, 'forbidden'),
    'members do not review',
  );
  t.ok(isProblem(await review(app, alice!, claim.body.id, { decision: 'accept' }), 403, 'forbidden'));
  t.ok(isProblem(await review(app, outsider, claim.body.id, { decision: 'accept' }), 404, 'claim_not_found'));
  t.ok(isProblem(await review(app, owner, crypto.randomUUID(), { decision: 'accept' }), 404, 'claim_not_found'));

  for (const decision of ['reject', 'revise'] as const) {
    const missing = await review(app, owner, claim.body.id, { decision });
    t.ok(isProblem(missing, 400, 'feedback_required'), `${decision} without feedback`);
    t.match(missing.body.errors, [{ path: 'body/feedback' }]);
    t.ok(
      isProblem(await review(app, owner, claim.body.id, { decision, feedback: '   ' }), 400, 'feedback_required'),
      `${decision} with blank feedback`,
    );
  }
  for (const body of [
    { decision: 'maybe' },
    { decision: 'accept', score: 201 },
    { decision: 'accept', score: -1 },
    { decision: 'accept', score: 99.5 },
    {},
  ]) {
    t.ok(
      isProblem(
        await call(app, 'POST', `/v1/claims/${claim.body.id}/reviews`, { token: owner.token, body }),
        400,
        'invalid_request',
      ),
      JSON.stringify(body),
    );
  }

  const accepted = await review(app, owner, claim.body.id, { decision: 'accept' });
  t.equal(accepted.status, 201);
  t.ok(
    isProblem(await review(app, admin, claim.body.id, { decision: 'accept' }), 409, 'claim_not_submitted'),
    'reviewed once only',
  );

  await call(app, 'PATCH', `/v1/projects/${project.id}`, { token: owner.token, body: { status: 'closed' } });
  const late = await claimTask(app, bob!, task.id);
  t.ok(isProblem(late, 409, 'project_not_open'));
});

t.test('accept with a score: weight x score points, the task done, events written', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice] = await joinMembers(app, circle.id, 1);
  const { project, task } = await projectWithTask(app, owner, circle.id, { weight: 3 });
  const claim = await claimTask(app, alice!, task.id);
  const submission = await submitWork(app, alice!, claim.body.id);

  const res = await review(app, owner, claim.body.id, { decision: 'accept', score: 150, feedback: 'Excellent' });
  t.equal(res.status, 201);
  t.match(res.body, {
    claimId: claim.body.id,
    submissionId: submission.body.id,
    decision: 'accept',
    score: 150,
    feedback: 'Excellent',
    reviewerId: owner.id,
    automatic: false,
    points: 450,
  });
  t.equal((await call(app, 'GET', `/v1/claims/${claim.body.id}`, { token: alice!.token })).body.status, 'accepted');
  t.match((await call(app, 'GET', `/v1/tasks/${task.id}`, { token: alice!.token })).body, {
    status: 'done',
    acceptedCount: 1,
    liveClaims: 0,
  });

  const rows = await db.selectFrom('contributions').selectAll().execute();
  t.equal(rows.length, 1);
  t.match(rows[0], {
    user_id: alice!.id,
    project_id: project.id,
    circle_id: circle.id,
    source: 'task',
    task_id: task.id,
    claim_id: claim.body.id,
    points: 450,
    created_by: owner.id,
  });
  const totals = await call(app, 'GET', `/v1/projects/${project.id}/contributions`, { token: alice!.token });
  t.match(totals.body.items, [{ userId: alice!.id, points: 450, acceptedTasks: 1 }]);

  t.same(await eventTypes(db, claim.body.id), ['claim.created']);
  t.same(await eventTypes(db, submission.body.id), ['submission.created']);
  t.same(await eventTypes(db, res.body.id), ['review.created']);
  t.same(await eventTypes(db, task.id), ['task.created', 'task.completed']);
  const recorded = await db
    .selectFrom('events')
    .select(['subject_id', 'actor_id', 'payload'])
    .where('type', '=', 'contribution.recorded')
    .executeTakeFirstOrThrow();
  t.match(recorded, { subject_id: alice!.id, actor_id: owner.id, payload: { points: 450, source: 'task' } });

  // Default score is 100.
  const { task: other } = await projectWithTask(app, owner, circle.id, { weight: 7 });
  const second = await claimTask(app, alice!, other.id);
  await submitWork(app, alice!, second.body.id);
  t.match((await review(app, owner, second.body.id, { decision: 'accept' })).body, { score: 100, points: 700 });
});

t.test('reject ends the claim and frees the slot, with no points', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const { task } = await projectWithTask(app, owner, circle.id);
  const claim = await claimTask(app, alice!, task.id);
  await submitWork(app, alice!, claim.body.id);
  t.ok(isProblem(await claimTask(app, bob!, task.id), 409, 'task_full'), 'a submitted claim holds the slot');

  const res = await review(app, owner, claim.body.id, { decision: 'reject', feedback: 'Off topic' });
  t.match(res.body, { decision: 'reject', score: null, feedback: 'Off topic', points: null });
  t.equal((await call(app, 'GET', `/v1/claims/${claim.body.id}`, { token: alice!.token })).body.status, 'rejected');
  t.match((await call(app, 'GET', `/v1/tasks/${task.id}`, { token: bob!.token })).body, {
    status: 'open',
    liveClaims: 0,
    acceptedCount: 0,
  });
  t.equal(
    await db
      .selectFrom('contributions')
      .select('id')
      .execute()
      .then((r) => r.length),
    0,
  );
  t.ok(isProblem(await submitWork(app, alice!, claim.body.id), 409, 'claim_not_active'));
  t.equal((await claimTask(app, bob!, task.id)).status, 201, 'someone else can take it');
  t.equal((await claimTask(app, alice!, task.id)).status, 409, 'full again');
});

t.test(
  'revise: back to active with a fresh lease, a second revision, then accept; the history shows both',
  async (t) => {
    const { app, db } = await buildTestApp(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [alice, bob] = await joinMembers(app, circle.id, 2);
    const outsider = await registerUser(app, 'outsider');
    const { task } = await projectWithTask(app, owner, circle.id, { weight: 2 }, { leaseSeconds: 600 });
    const claim = await claimTask(app, alice!, task.id);
    const first = await submitWork(app, alice!, claim.body.id, 'Draft one');

    const revise = await review(app, owner, claim.body.id, { decision: 'revise', feedback: 'Add sources', score: 80 });
    t.match(revise.body, { decision: 'revise', score: 80, feedback: 'Add sources', points: null });
    const reopened = await call(app, 'GET', `/v1/claims/${claim.body.id}`, { token: alice!.token });
    t.equal(reopened.body.status, 'active');
    t.ok(new Date(reopened.body.leaseStartedAt) > new Date(claim.body.leaseStartedAt), 'a fresh lease');
    t.equal(new Date(reopened.body.expiresAt).getTime() - new Date(reopened.body.leaseStartedAt).getTime(), 600_000);
    t.ok(isProblem(await claimTask(app, bob!, task.id), 409, 'task_full'), 'the member keeps the slot while revising');

    const second = await submitWork(app, alice!, claim.body.id, 'Draft two, with sources');
    t.equal(second.body.revision, 2);
    const accepted = await review(app, owner, claim.body.id, { decision: 'accept', score: 120 });
    t.match(accepted.body, { submissionId: second.body.id, points: 240 });

    const history = await call(app, 'GET', `/v1/claims/${claim.body.id}/submissions`, { token: alice!.token });
    t.equal(history.status, 200);
    t.equal(history.body.nextCursor, null);
    t.match(history.body.items, [
      {
        id: first.body.id,
        revision: 1,
        content: 'Draft one',
        review: {
          id: revise.body.id,
          decision: 'revise',
          score: 80,
          feedback: 'Add sources',
          reviewerId: owner.id,
          automatic: false,
        },
      },
      {
        id: second.body.id,
        revision: 2,
        content: 'Draft two, with sources',
        review: { id: accepted.body.id, decision: 'accept', score: 120, automatic: false },
      },
    ]);
    t.same(
      (await call(app, 'GET', `/v1/claims/${claim.body.id}/submissions`, { token: owner.token })).body,
      history.body,
      'managers see it too',
    );
    t.ok(
      isProblem(
        await call(app, 'GET', `/v1/claims/${claim.body.id}/submissions`, { token: bob!.token }),
        403,
        'forbidden',
      ),
    );
    t.ok(
      isProblem(
        await call(app, 'GET', `/v1/claims/${claim.body.id}/submissions`, { token: outsider.token }),
        404,
        'claim_not_found',
      ),
    );

    const pending = await claimTask(app, bob!, (await projectWithTask(app, owner, circle.id)).task.id);
    await submitWork(app, bob!, pending.body.id);
    const waiting = await call(app, 'GET', `/v1/claims/${pending.body.id}/submissions`, { token: bob!.token });
    t.equal(waiting.body.items[0].review, null, 'an unreviewed revision has no review yet');

    const contributions = await db
      .selectFrom('contributions')
      .select(['claim_id', 'points'])
      .where('user_id', '=', alice!.id)
      .execute();
    t.same(
      contributions,
      [{ claim_id: claim.body.id, points: 240 }],
      'one contribution for the claim, from the final review',
    );
    t.same(await eventTypes(db, claim.body.id), ['claim.created']);
    const reviews = await db
      .selectFrom('events')
      .select('payload')
      .where('type', '=', 'review.created')
      .orderBy('id')
      .execute();
    t.match(
      reviews.map((r) => r.payload),
      [{ decision: 'revise' }, { decision: 'accept' }],
    );
  },
);

t.test('work of a member who has left cannot go back to them for revision; accepting it still can', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const project = await createProject(app, owner, circle.id);
  const [first, second] = await addTasks(app, owner, project.id, [{ title: 'First' }, { title: 'Second' }]);
  const submitted = async (member: typeof alice, taskId: string) => {
    const claim = await claimTask(app, member!, taskId);
    t.equal((await submitWork(app, member!, claim.body.id)).status, 201);
    return claim.body.id as string;
  };
  const aliceClaim = await submitted(alice, first!.id);
  const bobClaim = await submitted(bob, second!.id);
  const leave = (member: typeof alice) =>
    call(app, 'DELETE', `/v1/circles/${circle.id}/members/${member!.id}`, { token: member!.token });
  t.equal((await leave(alice)).status, 204);
  t.equal((await leave(bob)).status, 204);

  const reviewsBefore = await countRows(db, 'reviews');
  const refused = await review(app, owner, aliceClaim, { decision: 'revise', feedback: 'Add sources' });
  t.ok(isProblem(refused, 409, 'claimant_departed'));
  t.equal(await countRows(db, 'reviews'), reviewsBefore, 'no review recorded');
  t.match(await db.selectFrom('claims').select('status').where('id', '=', aliceClaim).executeTakeFirst(), {
    status: 'submitted',
  });
  t.equal((await review(app, owner, aliceClaim, { decision: 'accept' })).status, 201, 'accepting still works');

  // Back in the circle, the member can take revisions again.
  t.equal((await call(app, 'POST', `/v1/circles/${circle.id}/members`, { token: bob!.token, body: {} })).status, 201);
  const revised = await review(app, owner, bobClaim, { decision: 'revise', feedback: 'Add sources' });
  t.equal(revised.status, 201, 'a member who came back gets the revision');
});
