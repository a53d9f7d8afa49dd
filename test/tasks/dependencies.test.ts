import t, { type Test } from 'tap';
import { recordAcceptedWork } from '../../src/tasks/task-completion.js';
import { assertInvariants } from '../settlement-helpers.js';
import { backendPid, waitUntilBlockedBy } from '../lock-waits.js';
import { buildTestApp, call, createCircle, isProblem, registerUser, type Reply } from '../helper.js';
import {
  addTasks,
  claimTask,
  completeTask,
  taskTreeFootprint,
  createProject,
  eventTypes,
  joinMembers,
  submitWork,
} from '../marketplace-helpers.js';

// Dependencies block claiming until what they depend on is done; parents are done when all their
// children are; completion unblocks dependents.

/** A circle with its owner, one member (alice) and an empty project. */
async function scene(t: Test) {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice] = await joinMembers(app, circle.id, 1);
  const project = await createProject(app, owner, circle.id);
  return { app, db, owner, circle, alice: alice!, project };
}

t.test('a task is blocked until its dependency is accepted', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const project = await createProject(app, owner, circle.id);
  const [spec, build] = await addTasks(app, owner, project.id, [
    { key: 'spec', title: 'Spec' },
    { title: 'Build', dependsOn: ['spec'] },
  ]);
  t.match(build, { blocked: true, claimable: false });

  const board = async () =>
    (await call(app, 'GET', `/v1/projects/${project.id}/tasks?claimable=true`, { token: bob!.token })).body.items.map(
      (x: { id: string }) => x.id,
    );
  t.same(await board(), [spec!.id], 'the blocked task is not on the claimable board');
  t.ok(isProblem(await claimTask(app, bob!, build!.id), 409, 'task_blocked'));

  const claim = await claimTask(app, alice!, spec!.id);
  const next = await call(app, 'POST', `/v1/projects/${project.id}/claims/next`, { token: bob!.token, body: {} });
  t.ok(isProblem(next, 409, 'no_claimable_task'), 'claims/next passes over the blocked task');
  await submitWork(app, alice!, claim.body.id);
  t.ok(isProblem(await claimTask(app, bob!, build!.id), 409, 'task_blocked'), 'submitted is not done');
  const rejected = await call(app, 'POST', `/v1/claims/${claim.body.id}/reviews`, {
    token: owner.token,
    body: { decision: 'reject', feedback: 'Not a spec' },
  });
  t.equal(rejected.status, 201);
  t.ok(isProblem(await claimTask(app, bob!, build!.id), 409, 'task_blocked'), 'rejected is not done');

  await completeTask(app, owner, alice!, spec!.id);
  t.same(await board(), [build!.id]);
  const unblocked = await call(app, 'POST', `/v1/projects/${project.id}/claims/next`, { token: bob!.token, body: {} });
  t.equal(unblocked.body.taskId, build!.id, 'and takes it once its dependency is done');
  t.equal((await call(app, 'POST', `/v1/claims/${unblocked.body.id}/release`, { token: bob!.token })).status, 200);
  const now = await call(app, 'GET', `/v1/tasks/${build!.id}`, { token: bob!.token });
  t.match(now.body, { blocked: false, claimable: true });
  t.equal((await claimTask(app, bob!, build!.id)).status, 201);
  t.same(await eventTypes(db, spec!.id), ['task.created', 'task.completed']);
});

t.test('a task needing two accepts stays open, and blocking, until the second', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob, carol] = await joinMembers(app, circle.id, 3);
  const project = await createProject(app, owner, circle.id);
  const [survey, report] = await addTasks(app, owner, project.id, [
    { key: 's', title: 'Survey', slots: 2, requiredAccepts: 2 },
    { title: 'Report', dependsOn: ['s'] },
  ]);

  await completeTask(app, owner, alice!, survey!.id);
  const once = await call(app, 'GET', `/v1/tasks/${survey!.id}`, { token: owner.token });
  t.match(once.body, { status: 'open', acceptedCount: 1, liveClaims: 0 });
  t.ok(isProblem(await claimTask(app, carol!, report!.id), 409, 'task_blocked'));
  await completeTask(app, owner, bob!, survey!.id);
  t.match((await call(app, 'GET', `/v1/tasks/${survey!.id}`, { token: owner.token })).body, {
    status: 'done',
    acceptedCount: 2,
  });
  t.equal((await claimTask(app, carol!, report!.id)).status, 201);
});

t.test('a parent is done when all its children are, and unblocks what depends on it', async (t) => {
  const { app, db, owner, alice, project } = await scene(t);
  const items = await addTasks(app, owner, project.id, [
    {
      key: 'chapter',
      title: 'Chapter',
      children: [{ title: 'Section 1' }, { title: 'Section 2', children: [{ title: 'Part a' }, { title: 'Part b' }] }],
    },
    { title: 'Publish', dependsOn: ['chapter'] },
  ]);
  const id = (title: string) => items.find((x) => x.title === title)!.id;
  const status = async (title: string) =>
    (await db.selectFrom('tasks').select('status').where('id', '=', id(title)).executeTakeFirstOrThrow()).status;

  await completeTask(app, owner, alice!, id('Part a'));
  t.equal(await status('Section 2'), 'open', 'one of two children done');
  await completeTask(app, owner, alice!, id('Part b'));
  t.equal(await status('Section 2'), 'done', 'all children done');
  t.equal(await status('Chapter'), 'open');
  t.ok(isProblem(await claimTask(app, alice!, id('Publish')), 409, 'task_blocked'));
  await completeTask(app, owner, alice!, id('Section 1'));
  t.equal(await status('Chapter'), 'done', 'completion rolls up the whole tree');
  t.equal(
    (await claimTask(app, alice!, id('Publish'))).status,
    201,
    'depending on a parent waits for the whole subtree',
  );

  const completed = await db
    .selectFrom('events')
    .select('subject_id')
    .where('type', '=', 'task.completed')
    .orderBy('id')
    .execute();
  t.same(
    completed.map((e) => e.subject_id),
    [id('Part a'), id('Part b'), id('Section 2'), id('Section 1'), id('Chapter')],
  );
  const progress = await call(app, 'GET', `/v1/projects/${project.id}`, { token: owner.token });
  t.match(progress.body.progress, { tasksTotal: 6, tasksDone: 5, tasksOpen: 1, liveClaims: 1, pointsAccepted: 300 });
});

t.test('the tasks below a task waiting for a dependency wait with it, at every depth', async (t) => {
  const { app, db, owner, alice, project } = await scene(t);
  const items = await addTasks(app, owner, project.id, [
    { key: 'one', title: 'Chapter 1', children: [{ title: 'Page 1' }] },
    {
      title: 'Chapter 2',
      dependsOn: ['one'],
      children: [{ title: 'Page 2' }, { title: 'Section 3', children: [{ title: 'Page 3' }] }],
    },
  ]);
  const id = (title: string) => items.find((x) => x.title === title)!.id;
  const view = async (title: string) =>
    (await call(app, 'GET', `/v1/tasks/${id(title)}`, { token: alice!.token })).body as {
      blocked: boolean;
      claimable: boolean;
    };
  const claimableBoard = async () =>
    (await call(app, 'GET', `/v1/projects/${project.id}/tasks?claimable=true`, { token: alice!.token })).body.items.map(
      (x: { title: string }) => x.title,
    );

  for (const page of ['Page 2', 'Page 3']) {
    t.match(await view(page), { blocked: true, claimable: false }, `${page} is blocked with its chapter`);
    t.ok(isProblem(await claimTask(app, alice!, id(page)), 409, 'task_blocked'), `${page} cannot be claimed`);
  }
  t.same(await claimableBoard(), ['Page 1'], 'the board offers only what can be claimed');
  const next = await call(app, 'POST', `/v1/projects/${project.id}/claims/next`, { token: alice!.token, body: {} });
  t.match(next.body, { taskId: id('Page 1') }, 'claims/next picks the one open page');

  // Added under the blocked chapter later: blocked from the start.
  const [late] = await addTasks(app, owner, project.id, [{ title: 'Page 4' }], id('Section 3'));
  t.match(await view('Section 3'), { blocked: true });
  t.match(
    (await call(app, 'GET', `/v1/tasks/${late!.id}`, { token: alice!.token })).body,
    { blocked: true, claimable: false },
    'a page added later waits too',
  );
  await assertInvariants(t, db);

  // Chapter 1 done: everything below chapter 2 is free.
  const submitted = await submitWork(app, alice!, next.body.id);
  t.equal(submitted.status, 201);
  t.equal(
    (
      await call(app, 'POST', `/v1/claims/${next.body.id}/reviews`, {
        token: owner.token,
        body: { decision: 'accept' },
      })
    ).status,
    201,
  );
  for (const page of ['Page 2', 'Page 3'])
    t.match(await view(page), { blocked: false, claimable: true }, `${page} is free once chapter 1 is done`);
  t.same((await claimableBoard()).sort(), ['Page 2', 'Page 3', 'Page 4']);
  t.equal((await claimTask(app, alice!, id('Page 3'))).status, 201);
  await assertInvariants(t, db);
});

t.test('a dependency put on a parent holds back its subtree, and taking it away frees it', async (t) => {
  const { app, db, owner, alice, project } = await scene(t);
  const items = await addTasks(app, owner, project.id, [
    { title: 'Research' },
    { title: 'Draft', children: [{ title: 'Outline' }, { title: 'Body', children: [{ title: 'Intro' }] }] },
  ]);
  const id = (title: string) => items.find((x) => x.title === title)!.id;
  const put = (title: string, dependsOn: string[]) =>
    call(app, 'PUT', `/v1/tasks/${id(title)}/dependencies`, { token: owner.token, body: { dependsOn } });
  const blocked = async (title: string) =>
    (await call(app, 'GET', `/v1/tasks/${id(title)}`, { token: owner.token })).body.blocked as boolean;

  t.equal((await put('Draft', [id('Research')])).status, 200);
  t.same([await blocked('Outline'), await blocked('Intro')], [true, true], 'the whole subtree waits');
  t.ok(isProblem(await claimTask(app, alice!, id('Intro')), 409, 'task_blocked'));
  await assertInvariants(t, db);
  t.equal((await put('Body', [id('Research')])).status, 200, 'a second blocked level');
  t.equal((await put('Draft', [])).status, 200);
  t.same([await blocked('Outline'), await blocked('Intro')], [false, true], 'the body still waits on its own');
  await assertInvariants(t, db);
  t.equal((await put('Body', [])).status, 200);
  t.same([await blocked('Outline'), await blocked('Intro')], [false, false]);

  // A claim below: the parent can no longer be made to wait for open work.
  const claim = await claimTask(app, alice!, id('Intro'));
  t.equal(claim.status, 201);
  const refused = await put('Draft', [id('Research')]);
  t.ok(isProblem(refused, 409, 'task_has_claims'), `409 task_has_claims (got ${refused.status} ${refused.body?.code})`);
  t.same([await blocked('Outline'), await blocked('Intro')], [false, false], 'and nothing changed');
  await assertInvariants(t, db);
});

t.test('dependsOn by task id: same project works, another project is refused and creates nothing', async (t) => {
  const { app, db, owner, circle, alice, project } = await scene(t);
  const [first, finished] = await addTasks(app, owner, project.id, [{ title: 'First' }, { title: 'Finished' }]);
  await completeTask(app, owner, alice!, finished!.id);

  const [later, afterDone] = await addTasks(app, owner, project.id, [
    { title: 'Later', dependsOn: [first!.id.toUpperCase()] },
    { title: 'After done', dependsOn: [finished!.id] },
  ]);
  t.match(later, { blocked: true, dependsOn: [first!.id] });
  t.match(
    afterDone,
    { blocked: false, claimable: true, dependsOn: [finished!.id] },
    'a dependency already done does not block',
  );
  await completeTask(app, owner, alice!, first!.id);
  t.match((await call(app, 'GET', `/v1/tasks/${later!.id}`, { token: owner.token })).body, { blocked: false });

  const other = await createProject(app, owner, circle.id);
  const [foreign] = await addTasks(app, owner, other.id, [{ title: 'Foreign' }]);
  const before = await taskTreeFootprint(db);
  for (const ref of [foreign!.id, crypto.randomUUID()]) {
    const res = await call(app, 'POST', `/v1/projects/${project.id}/tasks`, {
      token: owner.token,
      body: { tasks: [{ title: 'Fine' }, { title: 'Cross', dependsOn: [ref] }] },
    });
    t.ok(isProblem(res, 400, 'invalid_task_tree'));
    t.match(res.body.errors, [{ path: 'body/tasks', message: new RegExp(ref) }]);
  }
  t.same(await taskTreeFootprint(db), before, 'nothing created');
});

t.test('tasks added under a parent cannot wait for what waits for that parent', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const project = await createProject(app, owner, circle.id);
  const [epic, release, other] = await addTasks(app, owner, project.id, [
    { key: 'epic', title: 'Epic' },
    { title: 'Release', dependsOn: ['epic'] },
    { title: 'Other' },
  ]);
  const [part] = await addTasks(app, owner, project.id, [{ title: 'Part' }], epic!.id);
  const before = await taskTreeFootprint(db);
  // Release waits for Epic, which waits for its children: a child of Epic (or of its child)
  // waiting for Release, or for Epic itself, would never be claimable.
  for (const [parentId, dependsOn] of [
    [epic!.id, release!.id],
    [part!.id, release!.id],
    [part!.id, epic!.id.toUpperCase()],
  ] as const) {
    const res = await call(app, 'POST', `/v1/projects/${project.id}/tasks`, {
      token: owner.token,
      body: { parentId, tasks: [{ title: 'Fine' }, { title: 'Stuck', dependsOn: [dependsOn] }] },
    });
    t.ok(isProblem(res, 400, 'invalid_task_tree'), `under ${parentId === epic!.id ? 'Epic' : 'Part'}`);
    t.match(res.body.errors, [{ path: 'body/tasks', message: /^dependency cycle: .*"Stuck"/ }]);
  }
  t.same(await taskTreeFootprint(db), before, 'nothing created');
  const [fine] = await addTasks(app, owner, project.id, [{ title: 'Fine', dependsOn: [other!.id] }], epic!.id);
  t.match(fine, { blocked: true, dependsOn: [other!.id] }, 'waiting for an unrelated task is fine');
});

t.test('a dependency finishing while a dependent is being added does not leave it blocked forever', async (t) => {
  const { app, db, owner, circle, alice, project } = await scene(t);
  const [dep] = await addTasks(app, owner, project.id, [{ title: 'Dependency' }]);
  const claim = await claimTask(app, alice!, dep!.id);
  t.equal((await submitWork(app, alice!, claim.body.id)).status, 201);

  // The acceptance's transaction completes the dependency and stays open while the owner adds a
  // task depending on it; it commits only once the add is seen waiting on its lock.
  let adding!: Promise<Reply>;
  let waiter!: { query: string };
  await db.transaction().execute(async (trx) => {
    t.same(await recordAcceptedWork(trx, dep!.id, circle.id), [dep!.id]);
    const acceptance = await backendPid(trx);
    adding = call(app, 'POST', `/v1/projects/${project.id}/tasks`, {
      token: owner.token,
      body: { tasks: [{ title: 'Dependent', dependsOn: [dep!.id] }] },
    });
    waiter = await waitUntilBlockedBy(db, acceptance);
  });
  t.match(waiter.query, /FROM "tasks"[\s\S]*for share/i, "the add waited on the completed dependency's row");
  const added = await adding;
  t.equal(added.status, 201);
  const row = await db
    .selectFrom('tasks')
    .select(['blocking_deps'])
    .where('id', '=', added.body.items[0].id)
    .executeTakeFirstOrThrow();
  t.equal(row.blocking_deps, 0, 'the dependency is done, so the new task is not blocked');
  t.equal((await claimTask(app, alice!, added.body.items[0].id)).status, 201);
});
