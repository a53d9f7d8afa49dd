import t, { type Test } from 'tap';
import { sql } from 'kysely';
import { recordAcceptedWork } from '../../src/tasks/task-completion.js';
import { backendPid, waitUntilBlockedBy, waitUntilLockWaiters } from '../lock-waits.js';
import { heldTransaction } from '../held-transaction.js';
import { buildTestApp, call, createCircle, isProblem, registerUser, type Reply } from '../helper.js';
import {
  addTasks,
  claimTask,
  completeTask,
  createProject,
  eventTypes,
  joinMembers,
  submitWork,
} from '../marketplace-helpers.js';
import { assertInvariants } from '../settlement-helpers.js';

// Changing a task after posting: edits that never rewrite history, cancelling an open subtree with
// its live claims, and dependencies replaced later.

async function setup(t: Test, members = 3) {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const users = await joinMembers(app, circle.id, members);
  const project = await createProject(app, owner, circle.id);
  return { app, db, owner, circle, users, project };
}

const contributionRows = (db: Awaited<ReturnType<typeof setup>>['db']) =>
  db.selectFrom('contributions').selectAll().orderBy('id').execute();

t.test('PATCH edits an open task; a weight change leaves earlier points alone', async (t) => {
  const { app, db, owner, users, project } = await setup(t);
  const [ann, ben, cat] = users;
  const [task] = await addTasks(app, owner, project.id, [
    { title: 'Translate', weight: 2, slots: 3, requiredAccepts: 3 },
  ]);
  await completeTask(app, owner, ann!, task!.id);
  const before = await contributionRows(db);
  t.same(
    before.map((c) => Number(c.points)),
    [200],
  );

  const edited = await call(app, 'PATCH', `/v1/tasks/${task!.id}`, {
    token: owner.token,
    body: { title: 'Translate the FAQ', weight: 5, skills: ['Writing'], priority: 3 },
  });
  t.equal(edited.status, 200);
  t.match(edited.body, { title: 'Translate the FAQ', weight: 5, skills: ['writing'], priority: 3, status: 'open' });
  t.same(await contributionRows(db), before, 'accepted work keeps its points');
  await completeTask(app, owner, ben!, task!.id);
  t.same(
    (await contributionRows(db)).map((c) => Number(c.points)),
    [200, 500],
    'the next accept earns the new weight',
  );
  const updated = await db
    .selectFrom('events')
    .select(['actor_id', 'payload'])
    .where('subject_id', '=', task!.id)
    .where('type', '=', 'task.updated')
    .executeTakeFirstOrThrow();
  t.same(updated.actor_id, owner.id);
  t.same(updated.payload, {
    changes: {
      title: { from: 'Translate', to: 'Translate the FAQ' },
      weight: { from: 2, to: 5 },
      skills: { from: [], to: ['writing'] },
      priority: { from: 0, to: 3 },
    },
  });

  // Slots: two members hold it now.
  const c1 = await claimTask(app, cat!, task!.id);
  const [dan, eve] = await joinMembers(app, project.circleId, 2);
  await claimTask(app, dan!, task!.id);
  const below = await call(app, 'PATCH', `/v1/tasks/${task!.id}`, { token: owner.token, body: { slots: 1 } });
  t.ok(isProblem(below, 409, 'slots_below_live_claims'), 'slots below the live claims');
  t.equal((await call(app, 'PATCH', `/v1/tasks/${task!.id}`, { token: owner.token, body: { slots: 2 } })).status, 200);
  // eve has not worked on the task (ann and ben, whose work was accepted, get already_contributed).
  t.ok(isProblem(await claimTask(app, eve!, task!.id), 409, 'task_full'), 'the lowered slots hold');
  t.equal((await call(app, 'POST', `/v1/claims/${c1.body.id}/release`, { token: cat!.token })).status, 200);

  const member = await call(app, 'PATCH', `/v1/tasks/${task!.id}`, { token: ann!.token, body: { title: 'Mine' } });
  t.ok(isProblem(member, 403, 'forbidden'));
  const outsider = await registerUser(app, 'outsider');
  t.ok(
    isProblem(
      await call(app, 'PATCH', `/v1/tasks/${task!.id}`, { token: outsider.token, body: {} }),
      404,
      'task_not_found',
    ),
  );
  await assertInvariants(t, db);
});

t.test('PATCH: requiredAccepts at or below the accepts completes the task and rolls it up', async (t) => {
  const { app, db, owner, users, project } = await setup(t, 1);
  const [ann] = users;
  const items = await addTasks(app, owner, project.id, [
    { key: 'doc', title: 'Docs', children: [{ title: 'Guide', slots: 2, requiredAccepts: 3 }] },
    { title: 'Launch', dependsOn: ['doc'] },
  ]);
  const id = (title: string) => items.find((x) => x.title === title)!.id;
  await completeTask(app, owner, ann!, id('Guide'));
  const parent = await call(app, 'PATCH', `/v1/tasks/${id('Docs')}`, { token: owner.token, body: { slots: 2 } });
  t.ok(isProblem(parent, 409, 'task_not_leaf'), 'claim settings on a parent');

  const done = await call(app, 'PATCH', `/v1/tasks/${id('Guide')}`, {
    token: owner.token,
    body: { requiredAccepts: 1 },
  });
  t.equal(done.status, 200);
  t.match(done.body, { status: 'done', requiredAccepts: 1, acceptedCount: 1 });
  t.match((await call(app, 'GET', `/v1/tasks/${id('Docs')}`, { token: owner.token })).body, { status: 'done' });
  t.match((await call(app, 'GET', `/v1/tasks/${id('Launch')}`, { token: owner.token })).body, {
    blocked: false,
    claimable: true,
  });
  t.same(await eventTypes(db, id('Guide')), ['task.created', 'task.updated', 'task.completed']);
  const again = await call(app, 'PATCH', `/v1/tasks/${id('Guide')}`, { token: owner.token, body: { title: 'x' } });
  t.ok(isProblem(again, 409, 'task_not_open'), 'a done task is history');
  await assertInvariants(t, db);
});

t.test('cancel frees every live slot once, finishes parents, unblocks dependents, keeps contributions', async (t) => {
  const { app, db, owner, users, project } = await setup(t, 3);
  const [ann, ben, cat] = users;
  const items = await addTasks(app, owner, project.id, [
    {
      key: 'book',
      title: 'Book',
      children: [
        { title: 'Written', slots: 3, requiredAccepts: 2 },
        { title: 'Chapter', children: [{ title: 'Draft', slots: 3 }, { title: 'Edit' }] },
      ],
    },
    { key: 'art', title: 'Art', children: [{ title: 'Sketch', slots: 2 }, { title: 'Ink' }] },
    { title: 'Misc', children: [{ title: 'M1' }, { title: 'M2' }] },
    { title: 'Print', dependsOn: ['book'] },
    { title: 'Frame', dependsOn: ['art'] },
  ]);
  const id = (title: string) => items.find((x) => x.title === title)!.id;
  const status = async (title: string) =>
    await db
      .selectFrom('tasks')
      .select(['status', 'live_claims', 'blocking_deps'])
      .where('id', '=', id(title))
      .executeTakeFirstOrThrow();

  // 'Written' has one accept of two and live claims; 'Draft' holds an active and a submitted claim.
  await completeTask(app, owner, ann!, id('Written'));
  const writtenLive = await claimTask(app, ben!, id('Written'));
  const draftActive = await claimTask(app, ann!, id('Draft'));
  const draftSubmitted = await claimTask(app, ben!, id('Draft'));
  t.equal((await submitWork(app, ben!, draftSubmitted.body.id)).status, 201);
  const sketch = await claimTask(app, cat!, id('Sketch'));
  // 'Edit' is done, so once 'Written' and 'Chapter' are cancelled the book is done (one child done).
  await completeTask(app, owner, cat!, id('Edit'));
  const contributionsBefore = await contributionRows(db);

  const blank = await call(app, 'POST', `/v1/tasks/${id('Chapter')}/cancel`, {
    token: owner.token,
    body: { reason: ' ' },
  });
  t.ok(isProblem(blank, 400, 'reason_required'));
  const byMember = await call(app, 'POST', `/v1/tasks/${id('Chapter')}/cancel`, {
    token: ann!.token,
    body: { reason: 'x' },
  });
  t.ok(isProblem(byMember, 403, 'forbidden'));

  const draft = await call(app, 'POST', `/v1/tasks/${id('Draft')}/cancel`, {
    token: owner.token,
    body: { reason: 'Out of scope' },
  });
  t.equal(draft.status, 200);
  t.match(draft.body, { id: id('Draft'), status: 'cancelled', liveClaims: 0 });
  t.match(await status('Chapter'), { status: 'done' }, 'every child finished, one done: the parent is done');
  t.match(await status('Edit'), { status: 'done' }, 'done work stays done');
  t.match(await status('Book'), { status: 'open' }, "'Written' is still open");
  for (const claim of [draftActive, draftSubmitted]) {
    const row = await db
      .selectFrom('claims')
      .select(['status', 'revoke_reason'])
      .where('id', '=', claim.body.id)
      .executeTakeFirstOrThrow();
    t.same(row, { status: 'revoked', revoke_reason: 'Out of scope' });
    t.same(await eventTypes(db, claim.body.id), ['claim.created', 'claim.revoked']);
  }
  t.same(await eventTypes(db, id('Draft')), ['task.created', 'task.cancelled']);
  t.same(await eventTypes(db, id('Chapter')), ['task.created', 'task.completed']);

  const written = await call(app, 'POST', `/v1/tasks/${id('Written')}/cancel`, {
    token: owner.token,
    body: { reason: 'Enough' },
  });
  t.match(written.body, { status: 'cancelled', acceptedCount: 1, liveClaims: 0 });
  t.match(await status('Book'), { status: 'done' }, 'the roll-up continues upwards');
  t.match(await status('Print'), { blocking_deps: 0 }, 'and unblocks what depended on it');
  t.equal((await claimTask(app, ann!, id('Print'))).status, 201);
  t.same(
    (await db.selectFrom('claims').select('status').where('id', '=', writtenLive.body.id).executeTakeFirstOrThrow())
      .status,
    'revoked',
  );

  // Cancelling a parent cancels its open subtree; a cancelled dependency no longer blocks.
  t.match(await status('Frame'), { blocking_deps: 1 });
  const art = await call(app, 'POST', `/v1/tasks/${id('Art')}/cancel`, { token: owner.token, body: { reason: 'No' } });
  t.match(art.body, { status: 'cancelled' });
  for (const title of ['Sketch', 'Ink']) t.match(await status(title), { status: 'cancelled', live_claims: 0 });
  t.same(await eventTypes(db, id('Ink')), ['task.created', 'task.cancelled']);
  t.match(await status('Frame'), { blocking_deps: 0, status: 'open' });
  t.same(
    (await db.selectFrom('claims').select('status').where('id', '=', sketch.body.id).executeTakeFirstOrThrow()).status,
    'revoked',
  );

  // Every child cancelled one by one: the parent is cancelled by the roll-up.
  for (const title of ['M1', 'M2']) {
    t.match(await status('Misc'), { status: 'open' });
    const res = await call(app, 'POST', `/v1/tasks/${id(title)}/cancel`, {
      token: owner.token,
      body: { reason: 'No' },
    });
    t.equal(res.status, 200);
  }
  t.match(await status('Misc'), { status: 'cancelled' });
  t.same(await eventTypes(db, id('Misc')), ['task.created', 'task.cancelled']);

  const twice = await call(app, 'POST', `/v1/tasks/${id('Ink')}/cancel`, {
    token: owner.token,
    body: { reason: 'No' },
  });
  t.ok(isProblem(twice, 409, 'task_not_open'), 'cancelling a cancelled task');
  t.ok(isProblem(await claimTask(app, cat!, id('Ink')), 409, 'task_not_open'), 'nobody claims a cancelled task');
  t.same(await contributionRows(db), contributionsBefore, 'no contribution changed');
  t.equal(
    Number(
      (
        await db
          .selectFrom('events')
          .select((e) => e.fn.countAll().as('n'))
          .where('type', '=', 'claim.revoked')
          .executeTakeFirstOrThrow()
      ).n,
    ),
    4,
    'one claim.revoked per live claim',
  );
  await assertInvariants(t, db);
});

t.test('PUT dependencies: replaced within the project, cycles and other projects refused', async (t) => {
  const { app, db, owner, users, project } = await setup(t, 1);
  const [ann] = users;
  const items = await addTasks(app, owner, project.id, [
    { key: 'a', title: 'A' },
    { key: 'b', title: 'B', dependsOn: ['a'] },
    { title: 'C', dependsOn: ['b'] },
    { key: 'p', title: 'P', children: [{ title: 'K' }] },
  ]);
  const id = (title: string) => items.find((x) => x.title === title)!.id;
  const put = (title: string, dependsOn: string[], token = owner.token) =>
    call(app, 'PUT', `/v1/tasks/${id(title)}/dependencies`, { token, body: { dependsOn } });

  const cycle = await put('A', [id('C')]);
  t.ok(isProblem(cycle, 400, 'dependency_cycle'));
  t.match(cycle.body.errors, [{ path: 'body/dependsOn', message: /"A" -> "C" -> "B" -> "A"/ }]);
  t.ok(isProblem(await put('K', [id('P')]), 400, 'dependency_cycle'), 'a task waiting for its own parent');
  t.ok(isProblem(await put('A', [id('A')]), 400, 'invalid_dependencies'));
  const other = await createProject(app, owner, project.circleId);
  const [foreign] = await addTasks(app, owner, other.id, [{ title: 'Foreign' }]);
  const cross = await call(app, 'PUT', `/v1/tasks/${id('A')}/dependencies`, {
    token: owner.token,
    body: { dependsOn: [foreign!.id] },
  });
  t.ok(isProblem(cross, 400, 'invalid_dependencies'));
  t.match(cross.body.errors, [{ path: 'body/dependsOn/0' }]);
  t.ok(isProblem(await put('A', [], ann!.token), 403, 'forbidden'));

  const moved = await put('C', [id('A')]);
  t.equal(moved.status, 200);
  t.match(moved.body, { dependsOn: [id('A')], blocked: true });
  const freed = await put('B', []);
  t.match(freed.body, { dependsOn: [], blocked: false, claimable: true });
  await completeTask(app, owner, ann!, id('A'));
  t.match((await call(app, 'GET', `/v1/tasks/${id('C')}`, { token: owner.token })).body, { blocked: false });
  const onDone = await put('B', [id('A')]);
  t.match(onDone.body, { blocked: false }, 'a done dependency does not block');
  t.same(await eventTypes(db, id('B')), ['task.created', 'task.updated', 'task.updated']);
  await assertInvariants(t, db);
});

t.test('a claimed task cannot be made to wait for an open task; a done one is fine', async (t) => {
  const { app, db, owner, users, project } = await setup(t, 1);
  const [ann] = users;
  const [claimed, open, done] = await addTasks(app, owner, project.id, [
    { title: 'Claimed' },
    { title: 'Open' },
    { title: 'Done' },
  ]);
  await completeTask(app, owner, ann!, done!.id);
  t.equal((await claimTask(app, ann!, claimed!.id)).status, 201, 'the work is under way');
  const put = (dependsOn: string[]) =>
    call(app, 'PUT', `/v1/tasks/${claimed!.id}/dependencies`, { token: owner.token, body: { dependsOn } });

  const refused = await put([open!.id]);
  t.ok(isProblem(refused, 409, 'task_has_claims'), `409 task_has_claims (got ${refused.status} ${refused.body?.code})`);
  t.same(await db.selectFrom('task_dependencies').select('task_id').execute(), [], 'no dependency stored');
  t.same(await eventTypes(db, claimed!.id), ['task.created'], 'no event');
  t.match((await put([done!.id])).body, { dependsOn: [done!.id], blocked: false }, 'a done dependency changes nothing');
  await assertInvariants(t, db);
});

t.test("accepting a task's work while a sibling depending on it is cancelled: both go through", async (t) => {
  const { app, db, owner, users, project } = await setup(t, 1);
  const [ann] = users;
  const [parent] = await addTasks(app, owner, project.id, [
    {
      title: 'Chapter',
      children: [
        { key: 'a', title: 'Draft' },
        { title: 'Edit', dependsOn: ['a'] },
      ],
    },
  ]);
  const tasks = await db.selectFrom('tasks').select(['id', 'title']).where('parent_id', '=', parent!.id).execute();
  const id = (title: string) => tasks.find((x) => x.title === title)!.id;
  const claim = await claimTask(app, ann!, id('Draft'));
  t.equal((await submitWork(app, ann!, claim.body.id)).status, 201);

  // The parent held by the test, so the accept and the cancel both reach it before either commits:
  // the accept holding the draft, the cancel holding the edit that depends on it.
  const hold = await heldTransaction(db, async (trx) => {
    await sql`SELECT 1 FROM tasks WHERE id = ${parent!.id}::uuid FOR UPDATE`.execute(trx);
    return backendPid(trx);
  });
  const accepting = call(app, 'POST', `/v1/claims/${claim.body.id}/reviews`, {
    token: owner.token,
    body: { decision: 'accept' },
  });
  await waitUntilBlockedBy(db, hold.value);
  const cancelling = call(app, 'POST', `/v1/tasks/${id('Edit')}/cancel`, {
    token: owner.token,
    body: { reason: 'Not needed after all.' },
  });
  await waitUntilLockWaiters(db, 2);
  await hold.commit();
  const [accepted, cancelled] = await Promise.all([accepting, cancelling]);
  t.equal(accepted.status, 201, `the accept went through (${accepted.status} ${accepted.body?.code ?? ''})`);
  t.equal(cancelled.status, 200, `the cancel went through (${cancelled.status} ${cancelled.body?.code ?? ''})`);
  t.same(
    await db
      .selectFrom('tasks')
      .select(['title', 'status'])
      .where('project_id', '=', project.id)
      .orderBy('title')
      .execute(),
    [
      { title: 'Chapter', status: 'done' },
      { title: 'Draft', status: 'done' },
      { title: 'Edit', status: 'cancelled' },
    ],
    'the chapter is done: its draft done, its edit cancelled',
  );
  await assertInvariants(t, db);
});

t.test('a dependency completing while it is being added is not lost', async (t) => {
  const { app, db, owner, users, project, circle } = await setup(t, 1);
  const [ann] = users;
  const [dep, later] = await addTasks(app, owner, project.id, [{ title: 'Dependency' }, { title: 'Later' }]);
  const claim = await claimTask(app, ann!, dep!.id);
  t.equal((await submitWork(app, ann!, claim.body.id)).status, 201);

  // The acceptance's transaction completes the dependency and stays open while the owner makes
  // 'Later' depend on it; it commits only once the change is seen waiting on its lock.
  let putting!: Promise<Reply>;
  let waiter!: { query: string };
  await db.transaction().execute(async (trx) => {
    t.same(await recordAcceptedWork(trx, dep!.id, circle.id), [dep!.id]);
    const acceptance = await backendPid(trx);
    putting = call(app, 'PUT', `/v1/tasks/${later!.id}/dependencies`, {
      token: owner.token,
      body: { dependsOn: [dep!.id] },
    });
    waiter = await waitUntilBlockedBy(db, acceptance);
  });
  t.match(waiter.query, /FROM "tasks"[\s\S]*for share/i, "the change waited on the dependency's row");
  const put = await putting;
  t.equal(put.status, 200);
  t.match(put.body, { blocked: false, dependsOn: [dep!.id] }, 'the dependency is done, so nothing blocks');
  await assertInvariants(t, db);
});

t.test('cancelling a task and, at once, a task below it does not deadlock', async (t) => {
  const { app, db, owner, project } = await setup(t, 0);
  const [parent] = await addTasks(app, owner, project.id, [
    { title: 'Parent', children: [{ title: 'Child' }, { title: 'Sibling' }] },
  ]);
  const tasks = await db.selectFrom('tasks').select(['id', 'title']).where('project_id', '=', project.id).execute();
  const child = tasks.find((task) => task.title === 'Child')!.id;
  // The test plays the cancel of the child: it holds the child's row, as that cancel's update
  // does, and then wants the parent, as its roll-up does. The parent's cancel runs meanwhile.
  let cancelling!: Promise<Reply>;
  let parentLock: unknown;
  await db.transaction().execute(async (trx) => {
    await sql`SELECT 1 FROM tasks WHERE id = ${child}::uuid FOR UPDATE`.execute(trx);
    cancelling = call(app, 'POST', `/v1/tasks/${parent!.id}/cancel`, {
      token: owner.token,
      body: { reason: 'Dropped' },
    });
    await waitUntilBlockedBy(db, await backendPid(trx));
    // A cancel that took the parent before the child now holds what this wants: a deadlock, and
    // Postgres rolls back one side.
    parentLock = await sql`SELECT 1 FROM tasks WHERE id = ${parent!.id}::uuid FOR UPDATE`.execute(trx).then(
      () => 'taken',
      (err: unknown) => err,
    );
  });
  t.equal(parentLock, 'taken', "the child's side takes the parent: the cancel above has not taken it yet");
  const cancelled = await cancelling;
  t.equal(cancelled.status, 200, `the parent's cancel then goes through (${JSON.stringify(cancelled.body)})`);
  const statuses = await db
    .selectFrom('tasks')
    .select(['title', 'status'])
    .where('project_id', '=', project.id)
    .orderBy('title')
    .execute();
  t.same(statuses, [
    { title: 'Child', status: 'cancelled' },
    { title: 'Parent', status: 'cancelled' },
    { title: 'Sibling', status: 'cancelled' },
  ]);
  await assertInvariants(t, db);
});
