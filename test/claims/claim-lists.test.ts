import t from 'tap';
import { call, isProblem, buildTestApp } from '../helper.js';
import {
  addTasks,
  circleWithRoles,
  claimTask,
  completeTask,
  createProject,
  submitWork,
} from '../marketplace-helpers.js';

// GET /v1/projects/:projectId/claims and GET /v1/tasks/:taskId/claims: who holds what, for managers;
// a member's own claims in a project.

const ids = (res: { body: { items: { id: string }[] } }) => res.body.items.map((c) => c.id);

t.test("a project's claims: managers see everyone's with filters, a member only their own", async (t) => {
  const { app } = await buildTestApp(t);
  const { owner, admin, circle, members, outsider } = await circleWithRoles(app, { members: 2 });
  const [ann, ben] = members as [(typeof members)[0], (typeof members)[0]];
  const project = await createProject(app, owner, circle.id);
  const other = await createProject(app, owner, circle.id, { title: 'Other' });
  const [shared, annOnly, benOnly] = await addTasks(app, owner, project.id, [
    { title: 'Shared', slots: 2 },
    { title: 'Ann' },
    { title: 'Ben' },
  ]);
  const [elsewhere] = await addTasks(app, owner, other.id, [{ title: 'Elsewhere' }]);

  const annShared = (await claimTask(app, ann, shared!.id)).body.id;
  const benShared = (await claimTask(app, ben, shared!.id)).body.id;
  const annDone = await completeTask(app, owner, ann, annOnly!.id);
  const benSubmitted = (await claimTask(app, ben, benOnly!.id)).body.id;
  await submitWork(app, ben, benSubmitted);
  await claimTask(app, ann, elsewhere!.id);

  const url = `/v1/projects/${project.id}/claims`;
  const all = await call(app, 'GET', url, { token: owner.token });
  t.equal(all.status, 200);
  t.same(ids(all), [benSubmitted, annDone, benShared, annShared], "everyone's, this project only, newest first");
  t.same(ids(await call(app, 'GET', url, { token: admin.token })), ids(all), 'admins too');
  t.same(ids(await call(app, 'GET', `${url}?status=submitted`, { token: owner.token })), [benSubmitted]);
  t.same(ids(await call(app, 'GET', `${url}?taskId=${shared!.id}`, { token: owner.token })), [benShared, annShared]);
  t.same(ids(await call(app, 'GET', `${url}?userId=${ann.id}`, { token: owner.token })), [annDone, annShared]);
  t.same(
    ids(await call(app, 'GET', `${url}?userId=${ann.id}&status=accepted`, { token: owner.token })),
    [annDone],
    'filters combine',
  );

  // Pages of one, in the same order.
  const walked: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { body: { items: { id: string }[]; nextCursor: string | null } } = await call(
      app,
      'GET',
      `${url}?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      { token: owner.token },
    );
    walked.push(...ids(page));
    cursor = page.body.nextCursor;
  } while (cursor);
  t.same(walked, ids(all), 'pages of one walk the same list');

  t.same(ids(await call(app, 'GET', url, { token: ann.token })), [annDone, annShared], 'a member: only their own');
  t.same(ids(await call(app, 'GET', `${url}?userId=${ann.id}`, { token: ann.token })), [annDone, annShared]);
  t.ok(
    isProblem(await call(app, 'GET', `${url}?userId=${ben.id}`, { token: ann.token }), 403, 'forbidden'),
    "a member asking for another member's claims: 403",
  );
  t.ok(isProblem(await call(app, 'GET', url, { token: outsider.token }), 404, 'project_not_found'));
});

t.test("a task's claims: who holds it and who did it, for owners and admins", async (t) => {
  const { app } = await buildTestApp(t);
  const { owner, admin, circle, members, outsider } = await circleWithRoles(app, { members: 3 });
  const project = await createProject(app, owner, circle.id);
  const [task] = await addTasks(app, owner, project.id, [{ title: 'Redundant', slots: 3, requiredAccepts: 3 }]);
  const done = await completeTask(app, owner, members[0]!, task!.id);
  const released = (await claimTask(app, members[1]!, task!.id)).body.id;
  await call(app, 'POST', `/v1/claims/${released}/release`, { token: members[1]!.token });
  const holding = (await claimTask(app, members[2]!, task!.id)).body.id;

  const url = `/v1/tasks/${task!.id}/claims`;
  const all = await call(app, 'GET', url, { token: owner.token });
  t.equal(all.status, 200);
  t.same(ids(all), [holding, released, done]);
  t.same(
    all.body.items.map((c: { userId: string; status: string }) => [c.userId, c.status]),
    [
      [members[2]!.id, 'active'],
      [members[1]!.id, 'released'],
      [members[0]!.id, 'accepted'],
    ],
  );
  t.same(ids(await call(app, 'GET', `${url}?status=active`, { token: admin.token })), [holding], 'by status');
  const firstPage = await call(app, 'GET', `${url}?limit=2`, { token: owner.token });
  t.same(ids(firstPage), [holding, released]);
  const second = await call(app, 'GET', `${url}?limit=2&cursor=${firstPage.body.nextCursor}`, { token: owner.token });
  t.same(ids(second), [done]);
  t.equal(second.body.nextCursor, null);

  t.ok(isProblem(await call(app, 'GET', url, { token: members[0]!.token }), 403, 'forbidden'), 'members: 403');
  t.ok(isProblem(await call(app, 'GET', url, { token: outsider.token }), 404, 'task_not_found'), 'outsiders: 404');
});
