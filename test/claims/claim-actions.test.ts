import t from 'tap';
import { buildTestApp, call, createCircle, isProblem, registerUser } from '../helper.js';
import {
  enqueuedJob,
  circleWithRoles,
  claimExpiryJobId,
  claimTask,
  eventTypes,
  joinMembers,
  projectWithTask,
  queueHandle,
  submitWork,
} from '../marketplace-helpers.js';

// What a claimant and the circle's managers can do with a claim: extend (heartbeat), release,
// revoke, read it; and who may not.

t.test('extend moves the deadline forward, capped by MAX_LEASE_SECONDS from the lease start', async (t) => {
  const { app, db, config } = await buildTestApp(t, { MAX_LEASE_SECONDS: '300' });
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const outsider = await registerUser(app, 'outsider');
  const { task } = await projectWithTask(app, owner, circle.id, {}, { leaseSeconds: 60 });
  const queue = queueHandle(t, config, 'claim-expiry');

  const claim = await claimTask(app, alice!, task.id);
  const url = `/v1/claims/${claim.body.id}/extend`;
  const started = new Date(claim.body.leaseStartedAt).getTime();
  t.ok(
    Math.abs(new Date(claim.body.expiresAt).getTime() - started - 60_000) < 1000,
    'the first lease is the project lease',
  );

  const longer = await call(app, 'POST', url, { token: alice!.token, body: { seconds: 120 } });
  t.equal(longer.status, 200);
  t.ok(new Date(longer.body.expiresAt) > new Date(claim.body.expiresAt), 'moved forward');
  t.equal(longer.body.leaseStartedAt, claim.body.leaseStartedAt, 'the lease start stays');
  t.ok(await enqueuedJob(queue, claimExpiryJobId(longer.body.expiresAt)), 'a job for the new deadline');

  const capped = await call(app, 'POST', url, { token: alice!.token, body: { seconds: 100000 } });
  t.equal(capped.status, 200);
  t.equal(
    new Date(capped.body.expiresAt).getTime() - started,
    300_000,
    'capped at the lease start plus MAX_LEASE_SECONDS',
  );
  t.ok(
    isProblem(
      await call(app, 'POST', url, { token: alice!.token, body: { seconds: 600 } }),
      409,
      'lease_limit_reached',
    ),
  );
  const heartbeat = await call(app, 'POST', url, { token: alice!.token, body: {} });
  t.equal(heartbeat.status, 200, 'the default length (60 s) is less than the lease has left');
  t.same(heartbeat.body, capped.body, 'which changes nothing');
  t.ok(isProblem(await call(app, 'POST', url, { token: alice!.token, body: { seconds: 0 } }), 400, 'invalid_request'));
  t.ok(
    isProblem(
      await call(app, 'POST', url, { token: alice!.token, body: { seconds: 10, extra: 1 } }),
      400,
      'invalid_request',
    ),
  );

  t.ok(
    isProblem(await call(app, 'POST', url, { token: bob!.token, body: {} }), 403, 'forbidden'),
    "another member's claim",
  );
  t.ok(
    isProblem(await call(app, 'POST', url, { token: owner.token, body: {} }), 403, 'forbidden'),
    'even the owner cannot extend it',
  );
  t.ok(isProblem(await call(app, 'POST', url, { token: outsider.token, body: {} }), 404, 'claim_not_found'));
  t.ok(isProblem(await call(app, 'POST', url, { body: {} }), 401));
  t.ok(
    isProblem(
      await call(app, 'POST', `/v1/claims/${crypto.randomUUID()}/extend`, { token: alice!.token, body: {} }),
      404,
      'claim_not_found',
    ),
  );
  t.ok(
    isProblem(
      await call(app, 'POST', '/v1/claims/not-a-uuid/extend', { token: alice!.token, body: {} }),
      400,
      'invalid_request',
    ),
  );

  t.same(await eventTypes(db, claim.body.id), ['claim.created', 'claim.extended', 'claim.extended']);
  const row = await db
    .selectFrom('claims')
    .select('expires_at')
    .where('id', '=', claim.body.id)
    .executeTakeFirstOrThrow();
  t.equal(row.expires_at.getTime(), started + 300_000, 'refused and short extensions changed nothing');
});

t.test('release frees the slot; only the claimant may release, and only an active claim', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const outsider = await registerUser(app, 'outsider');
  const { task } = await projectWithTask(app, owner, circle.id);

  const claim = await claimTask(app, alice!, task.id);
  t.ok(isProblem(await claimTask(app, bob!, task.id), 409, 'task_full'));
  const url = `/v1/claims/${claim.body.id}/release`;
  t.ok(isProblem(await call(app, 'POST', url, { token: bob!.token }), 403, 'forbidden'));
  t.ok(
    isProblem(await call(app, 'POST', url, { token: owner.token }), 403, 'forbidden'),
    'managers revoke, they do not release',
  );
  t.ok(isProblem(await call(app, 'POST', url, { token: outsider.token }), 404, 'claim_not_found'));

  const released = await call(app, 'POST', url, { token: alice!.token });
  t.equal(released.status, 200);
  t.match(released.body, { id: claim.body.id, status: 'released' });
  t.ok(isProblem(await call(app, 'POST', url, { token: alice!.token }), 409, 'claim_not_active'), 'releasing twice');
  t.ok(
    isProblem(
      await call(app, 'POST', `/v1/claims/${claim.body.id}/extend`, { token: alice!.token, body: {} }),
      409,
      'claim_not_active',
    ),
  );
  t.ok(isProblem(await submitWork(app, alice!, claim.body.id), 409, 'claim_not_active'));

  const retaken = await claimTask(app, bob!, task.id);
  t.equal(retaken.status, 201, 'the slot is free again');
  // A submitted claim is no longer active: it cannot be released.
  t.equal((await submitWork(app, bob!, retaken.body.id)).status, 201);
  t.ok(
    isProblem(
      await call(app, 'POST', `/v1/claims/${retaken.body.id}/release`, { token: bob!.token }),
      409,
      'claim_not_active',
    ),
  );

  t.same(await eventTypes(db, claim.body.id), ['claim.created', 'claim.released']);
  const row = await db.selectFrom('tasks').select('live_claims').where('id', '=', task.id).executeTakeFirstOrThrow();
  t.equal(row.live_claims, 1);
});

t.test('revoke: owner or admin, with a reason, frees the slot; members 403, outsiders 404', async (t) => {
  const { app, db } = await buildTestApp(t);
  const {
    owner,
    circle,
    admin,
    members: [alice, bob],
    outsider,
  } = await circleWithRoles(app, { members: 2 });
  const { task } = await projectWithTask(app, owner, circle.id);

  const claim = await claimTask(app, alice!, task.id);
  const url = `/v1/claims/${claim.body.id}/revoke`;
  t.ok(isProblem(await call(app, 'POST', url, { token: bob!.token, body: { reason: 'mine now' } }), 403, 'forbidden'));
  t.ok(
    isProblem(await call(app, 'POST', url, { token: alice!.token, body: { reason: 'oops' } }), 403, 'forbidden'),
    'the claimant releases instead',
  );
  t.ok(
    isProblem(await call(app, 'POST', url, { token: outsider.token, body: { reason: 'x' } }), 404, 'claim_not_found'),
  );
  const noReason = await call(app, 'POST', url, { token: owner.token, body: {} });
  t.ok(isProblem(noReason, 400, 'invalid_request'));
  t.match(noReason.body.errors, [{ path: 'body/reason' }]);
  t.ok(isProblem(await call(app, 'POST', url, { token: owner.token, body: { reason: '' } }), 400, 'invalid_request'));
  const blank = await call(app, 'POST', url, { token: owner.token, body: { reason: '   ' } });
  t.ok(isProblem(blank, 400, 'reason_required'), 'a blank reason is no reason');
  t.match(blank.body.errors, [{ path: 'body/reason' }]);
  t.equal(
    (await call(app, 'GET', `/v1/claims/${claim.body.id}`, { token: owner.token })).body.status,
    'active',
    'refused revocations changed nothing',
  );

  const revoked = await call(app, 'POST', url, { token: owner.token, body: { reason: '  No activity for a week ' } });
  t.equal(revoked.status, 200);
  t.match(revoked.body, { status: 'revoked', revokeReason: 'No activity for a week' });
  t.ok(
    isProblem(await call(app, 'POST', url, { token: owner.token, body: { reason: 'again' } }), 409, 'claim_not_active'),
  );
  t.ok(
    isProblem(await submitWork(app, alice!, claim.body.id), 409, 'claim_not_active'),
    'a revoked claim cannot submit',
  );

  // The slot is free: Bob claims, submits, and an admin revokes the submitted claim too.
  const second = await claimTask(app, bob!, task.id);
  t.equal(second.status, 201);
  t.equal((await submitWork(app, bob!, second.body.id)).status, 201);
  const byAdmin = await call(app, 'POST', `/v1/claims/${second.body.id}/revoke`, {
    token: admin.token,
    body: { reason: 'Plagiarised' },
  });
  t.equal(byAdmin.status, 200);
  t.equal(byAdmin.body.status, 'revoked');
  const row = await db.selectFrom('tasks').select('live_claims').where('id', '=', task.id).executeTakeFirstOrThrow();
  t.equal(row.live_claims, 0);

  const events = await db
    .selectFrom('events')
    .select(['subject_id', 'actor_id', 'payload'])
    .where('type', '=', 'claim.revoked')
    .orderBy('id')
    .execute();
  t.same(events, [
    { subject_id: claim.body.id, actor_id: owner.id, payload: { taskId: task.id, reason: 'No activity for a week' } },
    { subject_id: second.body.id, actor_id: admin.id, payload: { taskId: task.id, reason: 'Plagiarised' } },
  ]);
});

t.test('GET /claims/:id: the claimant and managers see it, other members 403, outsiders 404', async (t) => {
  const { app } = await buildTestApp(t);
  const {
    owner,
    circle,
    admin,
    members: [alice, bob],
    outsider,
  } = await circleWithRoles(app, { members: 2 });
  const { task, project } = await projectWithTask(app, owner, circle.id);
  const claim = await claimTask(app, alice!, task.id);
  t.match(claim.body, {
    taskId: task.id,
    projectId: project.id,
    circleId: circle.id,
    userId: alice!.id,
    status: 'active',
    revokeReason: null,
  });

  for (const user of [alice!, owner, admin]) {
    const res = await call(app, 'GET', `/v1/claims/${claim.body.id}`, { token: user.token });
    t.equal(res.status, 200);
    t.same(res.body, claim.body);
  }
  t.ok(isProblem(await call(app, 'GET', `/v1/claims/${claim.body.id}`, { token: bob!.token }), 403, 'forbidden'));
  t.ok(
    isProblem(await call(app, 'GET', `/v1/claims/${claim.body.id}`, { token: outsider.token }), 404, 'claim_not_found'),
  );
});

t.test('a lease in a cancelled project cannot be extended: its work can no longer be submitted', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice] = await joinMembers(app, circle.id, 1);
  const { project, task } = await projectWithTask(app, owner, circle.id);
  const claim = await claimTask(app, alice!, task.id);
  const cancelled = await call(app, 'PATCH', `/v1/projects/${project.id}`, {
    token: owner.token,
    body: { status: 'cancelled' },
  });
  t.equal(cancelled.status, 200);
  const before = await db.selectFrom('claims').select(['expires_at', 'status']).executeTakeFirstOrThrow();
  const extended = await call(app, 'POST', `/v1/claims/${claim.body.id}/extend`, { token: alice!.token, body: {} });
  t.ok(isProblem(extended, 409, 'project_cancelled'));
  t.same(await db.selectFrom('claims').select(['expires_at', 'status']).executeTakeFirstOrThrow(), before);
  t.same(await eventTypes(db, claim.body.id), ['claim.created'], 'no claim.extended');
});
