import t from 'tap';
import { buildTestApp, call, createCircle, isProblem, registerUser, type Reply } from '../helper.js';
import {
  addTasks,
  claimNext,
  claimTask,
  completeTask,
  createProject,
  joinMembers,
  submitWork,
} from '../marketplace-helpers.js';

// GET /v1/me/claims, and the reasons a claim is refused.

t.test('GET /me/claims lists my claims newest first, filters by status and pages', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const project = await createProject(app, owner, circle.id);
  const tasks = await addTasks(
    app,
    owner,
    project.id,
    Array.from({ length: 7 }, (_, i) => ({ title: `Task ${i}` })),
  );

  const ids: string[] = [];
  for (const task of tasks.slice(0, 5)) ids.push((await claimTask(app, alice!, task.id)).body.id);
  await call(app, 'POST', `/v1/claims/${ids[0]}/release`, { token: alice!.token });
  await submitWork(app, alice!, ids[1]!);
  await completeTask(app, owner, bob!, tasks[5]!.id);

  const all = await call(app, 'GET', '/v1/me/claims', { token: alice!.token });
  t.equal(all.status, 200);
  t.same(
    all.body.items.map((c: { id: string }) => c.id),
    [...ids].reverse(),
    'only mine, newest first',
  );
  t.equal(all.body.nextCursor, null);

  const active = await call(app, 'GET', '/v1/me/claims?status=active', { token: alice!.token });
  t.same(
    active.body.items.map((c: { id: string }) => c.id),
    ids.slice(2).reverse(),
  );
  t.ok(active.body.items.every((c: { status: string }) => c.status === 'active'));
  t.same(
    (await call(app, 'GET', '/v1/me/claims?status=released', { token: alice!.token })).body.items.map(
      (c: { id: string }) => c.id,
    ),
    [ids[0]],
  );
  t.same(
    (await call(app, 'GET', '/v1/me/claims?status=submitted', { token: alice!.token })).body.items.map(
      (c: { id: string }) => c.id,
    ),
    [ids[1]],
  );
  t.same((await call(app, 'GET', '/v1/me/claims?status=accepted', { token: alice!.token })).body.items, []);
  t.equal((await call(app, 'GET', '/v1/me/claims?status=accepted', { token: bob!.token })).body.items.length, 1);
  t.ok(isProblem(await call(app, 'GET', '/v1/me/claims?status=lost', { token: alice!.token }), 400, 'invalid_request'));

  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: Reply = await call(app, 'GET', `/v1/me/claims?limit=2${cursor ? `&cursor=${cursor}` : ''}`, {
      token: alice!.token,
    });
    t.equal(page.status, 200);
    seen.push(...page.body.items.map((c: { id: string }) => c.id));
    cursor = page.body.nextCursor;
    pages++;
  } while (cursor && pages < 10);
  t.equal(pages, 3);
  t.same(seen, [...ids].reverse(), 'pages cover every claim once, in order');

  const filtered = await call(app, 'GET', '/v1/me/claims?status=active&limit=2', { token: alice!.token });
  const rest = await call(app, 'GET', `/v1/me/claims?status=active&limit=2&cursor=${filtered.body.nextCursor}`, {
    token: alice!.token,
  });
  t.same(
    [...filtered.body.items, ...rest.body.items].map((c: { id: string }) => c.id),
    ids.slice(2).reverse(),
  );
  t.equal(rest.body.nextCursor, null);

  t.ok(isProblem(await call(app, 'GET', '/v1/me/claims?limit=0', { token: alice!.token }), 400, 'invalid_request'));
  t.ok(isProblem(await call(app, 'GET', '/v1/me/claims?limit=201', { token: alice!.token }), 400, 'invalid_request'));
  t.ok(isProblem(await call(app, 'GET', '/v1/me/claims'), 401));
  for (const forged of [['x', 'y'], [1, 'not-a-uuid'], [1], 'garbage']) {
    const cursorText = typeof forged === 'string' ? forged : Buffer.from(JSON.stringify(forged)).toString('base64url');
    t.ok(
      isProblem(
        await call(app, 'GET', `/v1/me/claims?cursor=${cursorText}`, { token: alice!.token }),
        400,
        'invalid_cursor',
      ),
      `forged cursor ${JSON.stringify(forged)}`,
    );
  }
});

t.test(
  'claims are refused with a reason: unknown task, outsider, parent task, done task, project not open',
  async (t) => {
    const { app } = await buildTestApp(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [alice, bob] = await joinMembers(app, circle.id, 2);
    const outsider = await registerUser(app, 'outsider');
    const project = await createProject(app, owner, circle.id);
    const [parent, child, single] = await addTasks(app, owner, project.id, [
      { title: 'Parent', children: [{ title: 'Child' }] },
      { title: 'Single' },
    ]);

    t.ok(isProblem(await claimTask(app, alice!, crypto.randomUUID()), 404, 'task_not_found'));
    t.ok(isProblem(await claimTask(app, outsider, single!.id), 404, 'task_not_found'), 'outsiders learn nothing');
    t.ok(isProblem(await claimNext(app, outsider, project.id), 404, 'project_not_found'));
    t.ok(isProblem(await claimNext(app, alice!, crypto.randomUUID()), 404, 'project_not_found'));
    t.ok(isProblem(await claimTask(app, alice!, 'nope'), 400, 'invalid_request'));
    t.ok(isProblem(await claimTask(app, alice!, parent!.id), 409, 'task_not_open'), 'only leaves are claimable');

    await completeTask(app, owner, bob!, child!.id);
    t.ok(isProblem(await claimTask(app, alice!, child!.id), 409, 'task_not_open'), 'a done task');
    t.ok(isProblem(await claimTask(app, alice!, parent!.id), 409, 'task_not_open'), 'a done parent');

    for (const status of ['closed', 'draft'] as const) {
      const p = await createProject(app, owner, circle.id, status === 'draft' ? { status: 'draft' } : {});
      const [task] = await addTasks(app, owner, p.id, [{ title: 'T' }]);
      if (status === 'closed')
        t.equal(
          (await call(app, 'PATCH', `/v1/projects/${p.id}`, { token: owner.token, body: { status: 'closed' } })).status,
          200,
        );
      t.ok(isProblem(await claimTask(app, alice!, task!.id), 409, 'project_not_open'), `claim on a ${status} project`);
      t.ok(
        isProblem(await claimNext(app, alice!, p.id), 409, 'project_not_open'),
        `claims/next on a ${status} project`,
      );
    }
    const cancelled = await createProject(app, owner, circle.id);
    const [ct] = await addTasks(app, owner, cancelled.id, [{ title: 'T' }]);
    await call(app, 'PATCH', `/v1/projects/${cancelled.id}`, { token: owner.token, body: { status: 'cancelled' } });
    t.ok(isProblem(await claimTask(app, alice!, ct!.id), 409, 'project_cancelled'));

    t.ok(
      isProblem(await claimNext(app, alice!, project.id, { skills: ['nope'], extra: true }), 400, 'invalid_request'),
    );
    const next = await claimNext(app, alice!, project.id);
    t.equal(next.body.taskId, single!.id, 'claims/next offers the one claimable leaf');
    t.ok(isProblem(await claimNext(app, bob!, project.id), 409, 'no_claimable_task'));
  },
);

t.test('claims/next matches skills: from the body, else the caller profile', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob, carol] = await joinMembers(app, circle.id, 3);
  const project = await createProject(app, owner, circle.id);
  const [design, code, any] = await addTasks(app, owner, project.id, [
    { title: 'Design', skills: ['Design'], priority: 3 },
    { title: 'Code', skills: ['typescript'], priority: 2 },
    { title: 'Anything', priority: 1 },
  ]);

  const byBody = await claimNext(app, alice!, project.id, { skills: ['TypeScript'] });
  t.equal(byBody.body.taskId, code!.id, 'skills match case-insensitively, and the design task is skipped');
  t.equal((await call(app, 'PATCH', '/v1/me', { token: bob!.token, body: { skills: ['design'] } })).status, 200);
  const byProfile = await claimNext(app, bob!, project.id);
  t.equal(byProfile.body.taskId, design!.id, 'the profile skills are used when the body has none');
  const noSkills = await claimNext(app, carol!, project.id);
  t.equal(noSkills.body.taskId, any!.id, 'with no skills, any task; the highest priority left');
});
