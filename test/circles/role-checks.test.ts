import t from 'tap';
import { sql } from 'kysely';
import { buildTestApp, call, type Reply } from '../helper.js';
import { answeredOrBlocked, backendPid } from '../lock-waits.js';
import { addTasks, circleWithRoles, claimTask, createProject, submitWork } from '../marketplace-helpers.js';
import { heldTransaction } from '../held-transaction.js';
import { createWebhook } from '../webhooks/webhook-helpers.js';
import { createChallenge } from '../challenge-helpers.js';

// A manager's write checks the caller's role in its own transaction, share-locked: an admin
// demoted while the write is in flight either had the write commit first, or sees the demotion and
// is refused. The test holds the demotion (an update of the admin's membership) open, sends the
// write, and sees it wait for the demotion and then answer 403; with a plain read of the role the
// write would go through at once, by an admin who is one no longer.

t.test("an admin's write waits for a demotion in flight, then is refused", async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, circle, admin, member } = await circleWithRoles(app);
  const base = `/v1/circles/${circle.id}`;
  const invite = (await call(app, 'POST', `${base}/invites`, { token: owner.token, body: {} })).body.code as string;
  const hook = await createWebhook(app, owner, circle.id, { url: 'https://example.com/a', events: ['*'] });
  const doomed = await createWebhook(app, owner, circle.id, { url: 'https://example.com/b', events: ['*'] });
  const project = await createProject(app, owner, circle.id);
  const today = new Date().toISOString().slice(0, 10);
  const challenge = await createChallenge(app, owner, circle.id, { startsOn: today, endsOn: today, timezone: 'UTC' });
  // Work in flight for the claim writes: one claim submitted for review, one still active.
  const work = await createProject(app, owner, circle.id);
  const [toReview, toRevoke, toEdit, toCancel, before] = await addTasks(app, owner, work.id, [
    { title: 'Reviewed' },
    { title: 'Revoked' },
    { title: 'Edited' },
    { title: 'Cancelled' },
    { title: 'Before' },
  ]);
  const submitted = (await claimTask(app, member, toReview!.id)).body.id as string;
  t.equal((await submitWork(app, member, submitted)).status, 201);
  const active = (await claimTask(app, member, toRevoke!.id)).body.id as string;

  const writes: [string, () => Promise<Reply>][] = [
    ['create an invite', () => call(app, 'POST', `${base}/invites`, { token: admin.token, body: {} })],
    ['revoke an invite', () => call(app, 'DELETE', `${base}/invites/${invite}`, { token: admin.token })],
    [
      'create a webhook',
      () =>
        call(app, 'POST', `${base}/webhooks`, {
          token: admin.token,
          body: { url: 'https://example.com/c', events: ['*'] },
        }),
    ],
    [
      'edit a webhook',
      () => call(app, 'PATCH', `${base}/webhooks/${hook.id}`, { token: admin.token, body: { description: 'Edited' } }),
    ],
    [
      "rotate a webhook's secret",
      () => call(app, 'POST', `${base}/webhooks/${hook.id}/rotate-secret`, { token: admin.token, body: {} }),
    ],
    ['delete a webhook', () => call(app, 'DELETE', `${base}/webhooks/${doomed.id}`, { token: admin.token })],
    ['create a project', () => call(app, 'POST', `${base}/projects`, { token: admin.token, body: { title: 'Late' } })],
    [
      'create a challenge',
      () =>
        call(app, 'POST', `${base}/challenges`, {
          token: admin.token,
          body: { title: 'Late', startsOn: today, endsOn: today, timezone: 'UTC', pointsPerCheckin: 1 },
        }),
    ],
    [
      'edit a project',
      () => call(app, 'PATCH', `/v1/projects/${project.id}`, { token: admin.token, body: { title: 'Renamed' } }),
    ],
    [
      'post tasks',
      () =>
        call(app, 'POST', `/v1/projects/${project.id}/tasks`, {
          token: admin.token,
          body: { tasks: [{ title: 'Late' }] },
        }),
    ],
    [
      'edit a challenge',
      () => call(app, 'PATCH', `/v1/challenges/${challenge.id}`, { token: admin.token, body: { title: 'Renamed' } }),
    ],
    [
      'review work',
      () => call(app, 'POST', `/v1/claims/${submitted}/reviews`, { token: admin.token, body: { decision: 'accept' } }),
    ],
    [
      'edit a task',
      () => call(app, 'PATCH', `/v1/tasks/${toEdit!.id}`, { token: admin.token, body: { title: 'Renamed' } }),
    ],
    [
      'cancel a task',
      () => call(app, 'POST', `/v1/tasks/${toCancel!.id}/cancel`, { token: admin.token, body: { reason: 'Late' } }),
    ],
    [
      "replace a task's dependencies",
      () =>
        call(app, 'PUT', `/v1/tasks/${toEdit!.id}/dependencies`, {
          token: admin.token,
          body: { dependsOn: [before!.id] },
        }),
    ],
    [
      'revoke a claim',
      () => call(app, 'POST', `/v1/claims/${active}/revoke`, { token: admin.token, body: { reason: 'Abandoned' } }),
    ],
  ];
  const setRole = (role: 'admin' | 'member') =>
    sql`UPDATE memberships SET role = ${role} WHERE circle_id = ${circle.id}::uuid AND user_id = ${admin.id}::uuid`;

  for (const [what, write] of writes) {
    const demotion = await heldTransaction(db, async (trx) => {
      await setRole('member').execute(trx);
      return backendPid(trx);
    });
    const sent = write();
    const seen = await answeredOrBlocked(db, demotion.value, sent, 60_000);
    t.ok('blocked' in seen, `${what}: waits for the demotion in flight`);
    await demotion.commit();
    const answer = await sent;
    t.equal(answer.status, 403, `${what}: then refused (${answer.status} ${JSON.stringify(answer.body)})`);
    await setRole('admin').execute(db);
  }
  const projects = await db.selectFrom('projects').select(['id', 'title']).where('circle_id', '=', circle.id).execute();
  t.same(projects.map((p) => p.id).sort(), [project.id, work.id].sort(), "no project but the owner's");
  t.not(projects.find((p) => p.id === project.id)?.title, 'Renamed', 'as the owner named it');
  t.same(await db.selectFrom('tasks').select('id').where('project_id', '=', project.id).execute(), [], 'no task');
  t.same(
    await db
      .selectFrom('claims')
      .select(['id', 'status'])
      .where('project_id', '=', work.id)
      .orderBy('created_at')
      .execute(),
    [
      { id: submitted, status: 'submitted' },
      { id: active, status: 'active' },
    ],
    'the work was neither reviewed nor revoked',
  );
  t.same(
    await db.selectFrom('contributions').select('id').where('project_id', '=', work.id).execute(),
    [],
    'no points',
  );
  t.same(
    await db
      .selectFrom('tasks')
      .select(['title', 'status'])
      .where('id', 'in', [toEdit!.id, toCancel!.id])
      .orderBy('title')
      .execute(),
    [
      { title: 'Cancelled', status: 'open' },
      { title: 'Edited', status: 'open' },
    ],
    'no task renamed or cancelled',
  );
  t.same(await db.selectFrom('task_dependencies').select('task_id').execute(), [], 'no dependency added');
});
