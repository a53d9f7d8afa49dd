import t from 'tap';
import { sql } from 'kysely';
import { MAX_PROJECT_TASKS, MAX_TREE_DEPTH, MAX_TREE_NODES } from '../../src/tasks/task-tree.js';
import { buildTestApp, call, createCircle, isProblem, registerUser, type Reply } from '../helper.js';
import {
  circleWithRoles,
  addTasks,
  claimTask,
  countRows,
  taskTreeFootprint,
  createProject,
  joinMembers,
  type TaskNode,
} from '../marketplace-helpers.js';

// Adding task trees to a project and reading them back; a refused tree creates nothing.

const chain = (levels: number): TaskNode => {
  let node: TaskNode = { title: `level ${levels}` };
  for (let i = levels - 1; i >= 1; i--) node = { title: `level ${i}`, children: [node] };
  return node;
};

t.test('POST /projects/:id/tasks creates a forest in one go and GET reads it back', async (t) => {
  const { app, db } = await buildTestApp(t);
  const {
    owner,
    circle,
    admin,
    members: [member],
    outsider,
  } = await circleWithRoles(app);
  const project = await createProject(app, owner, circle.id);
  const url = `/v1/projects/${project.id}/tasks`;

  const body = {
    tasks: [
      {
        key: 'doc',
        title: 'Write docs',
        description: 'All of them',
        weight: 3,
        skills: ['Writing'],
        slots: 2,
        requiredAccepts: 2,
        priority: 7,
        children: [
          { key: 'intro', title: 'Intro' },
          { title: 'API', dependsOn: ['intro'] },
        ],
      },
      { title: 'Review docs', dependsOn: ['doc'] },
    ],
  };
  t.ok(
    isProblem(await call(app, 'POST', url, { token: member!.token, body }), 403, 'forbidden'),
    'members cannot add tasks',
  );
  t.ok(isProblem(await call(app, 'POST', url, { token: outsider.token, body }), 404, 'project_not_found'));
  t.ok(isProblem(await call(app, 'POST', url, { body }), 401));
  t.equal(await countRows(db, 'tasks'), 0);

  const res = await call(app, 'POST', url, { token: admin.token, body });
  t.equal(res.status, 201);
  // Rows are inserted level by level: every parent comes before its children.
  t.same(
    res.body.items.map((x: { title: string }) => x.title),
    ['Write docs', 'Review docs', 'Intro', 'API'],
    'parents before children',
  );
  const [doc, reviewDocs, intro, api] = res.body.items;
  t.match(doc, {
    projectId: project.id,
    parentId: null,
    title: 'Write docs',
    description: 'All of them',
    weight: 3,
    skills: ['writing'],
    slots: 2,
    requiredAccepts: 2,
    priority: 7,
    status: 'open',
    isLeaf: false,
    blocked: false,
    claimable: false,
    liveClaims: 0,
    acceptedCount: 0,
    dependsOn: [],
  });
  t.match(intro, {
    parentId: doc.id,
    isLeaf: true,
    blocked: false,
    claimable: true,
    weight: 1,
    slots: 1,
    requiredAccepts: 1,
    priority: 0,
    description: '',
  });
  t.match(api, { parentId: doc.id, blocked: true, claimable: false, dependsOn: [intro.id] });
  t.match(reviewDocs, { parentId: null, blocked: true, dependsOn: [doc.id] });

  for (const user of [member!, owner]) {
    const one = await call(app, 'GET', `/v1/tasks/${api.id}`, { token: user.token });
    t.equal(one.status, 200);
    t.same(one.body, api);
  }
  t.ok(isProblem(await call(app, 'GET', `/v1/tasks/${api.id}`, { token: outsider.token }), 404, 'task_not_found'));
  t.ok(
    isProblem(
      await call(app, 'GET', `/v1/tasks/${crypto.randomUUID()}`, { token: member!.token }),
      404,
      'task_not_found',
    ),
  );

  const created = await db
    .selectFrom('events')
    .select(['subject_id', 'actor_id', 'payload'])
    .where('type', '=', 'task.created')
    .orderBy('id')
    .execute();
  t.equal(created.length, 4, 'one task.created event per task');
  t.ok(created.every((e) => e.actor_id === admin.id && (e.payload as { projectId: string }).projectId === project.id));
  t.same(new Set(created.map((e) => e.subject_id)), new Set([doc.id, intro.id, api.id, reviewDocs.id]));

  // Adding under an existing leaf turns it into a parent.
  const under = await call(app, 'POST', url, {
    token: owner.token,
    body: { parentId: intro.id, tasks: [{ title: 'Intro draft' }, { title: 'Intro polish' }] },
  });
  t.equal(under.status, 201);
  t.ok(under.body.items.every((x: { parentId: string }) => x.parentId === intro.id));
  const introNow = await call(app, 'GET', `/v1/tasks/${intro.id}`, { token: owner.token });
  t.match(introNow.body, { isLeaf: false, claimable: false });
  t.ok(isProblem(await claimTask(app, member!, intro.id), 409, 'task_not_open'), 'a parent is not claimable');
});

t.test('GET /projects/:id/tasks filters by status, skill, claimable and parent, and pages', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [member, other] = await joinMembers(app, circle.id, 2);
  const outsider = await registerUser(app, 'outsider');
  const project = await createProject(app, owner, circle.id);
  const items = await addTasks(app, owner, project.id, [
    {
      key: 'p',
      title: 'Parent',
      children: [
        { title: 'Child 1', skills: ['sql'] },
        { title: 'Child 2', priority: 5 },
      ],
    },
    { key: 'x', title: 'Leaf', skills: ['SQL', 'design'] },
    { title: 'Blocked', dependsOn: ['x'], priority: 9 },
    { title: 'Full' },
  ]);
  const byTitle = Object.fromEntries(items.map((x) => [x.title, x.id]));
  t.equal((await claimTask(app, other!, byTitle.Full!)).status, 201);
  const list = (query: string) =>
    call(app, 'GET', `/v1/projects/${project.id}/tasks${query}`, { token: member!.token });
  const titles = (res: Reply) => res.body.items.map((x: { title: string }) => x.title);

  t.same(
    titles(await list('')),
    ['Parent', 'Leaf', 'Blocked', 'Full', 'Child 1', 'Child 2'],
    'creation order, level by level',
  );
  t.same(titles(await list('?skill=SQL')), ['Leaf', 'Child 1']);
  t.same(titles(await list(`?parentId=${byTitle.Parent}`)), ['Child 1', 'Child 2']);
  t.same(titles(await list('?status=done')), []);
  t.same(titles(await list('?status=open')).length, 6);
  const claimable = await list('?claimable=true');
  t.same(titles(claimable), ['Child 2', 'Leaf', 'Child 1'], 'only free, unblocked leaves, in claims/next order');
  t.ok(claimable.body.items.every((x: { claimable: boolean }) => x.claimable));

  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: Reply = await list(`?claimable=true&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
    seen.push(...titles(page));
    cursor = page.body.nextCursor;
  } while (cursor && seen.length < 10);
  t.same(seen, ['Child 2', 'Leaf', 'Child 1'], 'the claimable board pages in order');
  const first = await list('?limit=4');
  const second = await list(`?limit=4&cursor=${first.body.nextCursor}`);
  t.same([...titles(first), ...titles(second)], ['Parent', 'Leaf', 'Blocked', 'Full', 'Child 1', 'Child 2']);
  t.equal(second.body.nextCursor, null);

  t.ok(isProblem(await list('?status=nope'), 400, 'invalid_request'));
  t.ok(isProblem(await list('?claimable=maybe'), 400, 'invalid_request'));
  t.ok(isProblem(await list('?cursor=abc'), 400, 'invalid_cursor'));
  t.ok(
    isProblem(
      await list(`?claimable=true&cursor=${Buffer.from('["a","b"]').toString('base64url')}`),
      400,
      'invalid_cursor',
    ),
  );
  t.ok(isProblem(await list(`?cursor=${Buffer.from('["a"]').toString('base64url')}`), 400, 'invalid_cursor'));
  t.ok(
    isProblem(
      await call(app, 'GET', `/v1/projects/${project.id}/tasks`, { token: outsider.token }),
      404,
      'project_not_found',
    ),
  );
});

t.test('a refused tree creates nothing, and errors name the path', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const project = await createProject(app, owner, circle.id);
  const [existing] = await addTasks(app, owner, project.id, [{ key: 'seed', title: 'Existing' }]);
  const [deep] = await addTasks(app, owner, project.id, [chain(MAX_TREE_DEPTH)]);
  const deepest = await db
    .selectFrom('tasks')
    .select(['id', 'depth'])
    .where('project_id', '=', project.id)
    .orderBy('depth', 'desc')
    .executeTakeFirstOrThrow();
  t.equal(deepest.depth, MAX_TREE_DEPTH - 1);
  t.match(deep, { title: 'level 1', blocked: false }, 'the chain is answered root first');
  const before = await taskTreeFootprint(db);

  const leaves = (n: number) => Array.from({ length: n }, (_, i) => ({ title: `T${i}` }));
  const cases: [string, Record<string, unknown>, string, string][] = [
    ['unknown key', { tasks: [{ title: 'A', dependsOn: ['ghost'] }] }, 'invalid_task_tree', 'body/tasks/0/dependsOn/0'],
    [
      'duplicate key',
      {
        tasks: [
          { key: 'a', title: 'A' },
          { key: 'a', title: 'B' },
        ],
      },
      'invalid_task_tree',
      'body/tasks/1/key',
    ],
    [
      'cycle',
      {
        tasks: [
          { key: 'a', title: 'A', dependsOn: ['b'] },
          { key: 'b', title: 'B', dependsOn: ['a'] },
        ],
      },
      'invalid_task_tree',
      'body/tasks',
    ],
    [
      'self-dependency',
      { tasks: [{ key: 'a', title: 'A', dependsOn: ['a'] }] },
      'invalid_task_tree',
      'body/tasks/0/dependsOn/0',
    ],
    [
      'keys do not carry over between requests',
      { tasks: [{ title: 'A', dependsOn: ['seed'] }] },
      'invalid_task_tree',
      'body/tasks/0/dependsOn/0',
    ],
    [
      'depth beyond 8 levels',
      { tasks: [chain(MAX_TREE_DEPTH + 1)] },
      'invalid_request',
      `body/tasks/0${'/children/0'.repeat(MAX_TREE_DEPTH - 1)}/children`,
    ],
    [
      'a ninth level, under the deepest task of the project',
      { parentId: deepest.id, tasks: [{ title: 'A' }] },
      'invalid_task_tree',
      'body/tasks/0',
    ],
    ['more than 5000 tasks in one list', { tasks: leaves(MAX_TREE_NODES + 1) }, 'invalid_request', 'body/tasks'],
    [
      'more than 5000 tasks in the forest',
      {
        tasks: [
          { title: 'A', children: leaves(2500) },
          { title: 'B', children: leaves(2500) },
        ],
      },
      'invalid_task_tree',
      'body/tasks',
    ],
    ['weight 0', { tasks: [{ title: 'A', weight: 0 }] }, 'invalid_request', 'body/tasks/0/weight'],
    [
      'weight too big',
      { tasks: [{ title: 'A', children: [{ title: 'B', weight: 1000001 }] }] },
      'invalid_request',
      'body/tasks/0/children/0/weight',
    ],
    ['slots 0', { tasks: [{ title: 'A', slots: 0 }] }, 'invalid_request', 'body/tasks/0/slots'],
    ['slots too many', { tasks: [{ title: 'A', slots: 1001 }] }, 'invalid_request', 'body/tasks/0/slots'],
    ['fractional weight', { tasks: [{ title: 'A', weight: 1.5 }] }, 'invalid_request', 'body/tasks/0/weight'],
    ['missing title', { tasks: [{ description: 'no title' }] }, 'invalid_request', 'body/tasks/0/title'],
    ['unknown field', { tasks: [{ title: 'A', owner: 'me' }] }, 'invalid_request', 'body/tasks/0/owner'],
    ['empty forest', { tasks: [] }, 'invalid_request', 'body/tasks'],
    [
      'parent of another project',
      { parentId: crypto.randomUUID(), tasks: [{ title: 'A' }] },
      'invalid_task_tree',
      'body/parentId',
    ],
  ];
  for (const [name, body, code, path] of cases) {
    const res = await call(app, 'POST', `/v1/projects/${project.id}/tasks`, { token: owner.token, body });
    t.ok(isProblem(res, 400, code), `${name}: 400 ${code} (got ${res.status} ${res.body?.code})`);
    t.ok(
      res.body.errors?.some((e: { path: string }) => e.path === path),
      `${name}: errors name ${path} (got ${JSON.stringify(res.body.errors?.slice(0, 3))})`,
    );
  }
  t.same(await taskTreeFootprint(db), before, 'no task, dependency or event was created by any of them');

  // The same limits apply when the tree comes with a new project: no project either.
  const projects = await countRows(db, 'projects');
  const refused = await call(app, 'POST', `/v1/circles/${circle.id}/projects`, {
    token: owner.token,
    body: { title: 'P', tasks: [{ key: 'a', title: 'A', dependsOn: ['a'] }] },
  });
  t.ok(isProblem(refused, 400, 'invalid_task_tree'));
  t.equal(await countRows(db, 'projects'), projects, 'no project created');
  t.same(await taskTreeFootprint(db), before);
  t.same(
    await db.selectFrom('tasks').select(['id', 'title']).where('title', '=', 'Existing').execute(),
    [{ id: existing!.id, title: 'Existing' }],
    'the task that was there before is still there, once',
  );
});

t.test('exactly 5000 tasks in one request are accepted', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const project = await createProject(app, owner, circle.id);
  const tasks = Array.from({ length: 50 }, (_, i) => ({
    key: `g${i}`,
    title: `Group ${i}`,
    children: Array.from({ length: 99 }, (_, j) => ({
      title: `Task ${i}.${j}`,
      ...(i > 0 ? { dependsOn: [`g${i - 1}`] } : {}),
    })),
  }));
  const res = await call(app, 'POST', `/v1/projects/${project.id}/tasks`, { token: owner.token, body: { tasks } });
  t.equal(res.status, 201);
  t.equal(res.body.items.length, MAX_TREE_NODES);
  t.equal(await countRows(db, 'tasks'), MAX_TREE_NODES);
  t.equal(await countRows(db, 'task_dependencies'), 49 * 99);
  const got = await call(app, 'GET', `/v1/projects/${project.id}`, { token: owner.token });
  t.match(got.body.progress, { tasksTotal: MAX_TREE_NODES, tasksOpen: MAX_TREE_NODES, tasksDone: 0, liveClaims: 0 });
  const board = await call(app, 'GET', `/v1/projects/${project.id}/tasks?claimable=true&limit=200`, {
    token: owner.token,
  });
  t.equal(board.body.items.length, 99, 'only the first group is unblocked');
});

t.test('adding under a claimed leaf, a closed parent or a finished project is refused', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [member] = await joinMembers(app, circle.id, 1);
  const project = await createProject(app, owner, circle.id);
  const [leaf] = await addTasks(app, owner, project.id, [{ title: 'Leaf' }]);
  t.equal((await claimTask(app, member!, leaf!.id)).status, 201);
  const url = `/v1/projects/${project.id}/tasks`;
  t.ok(
    isProblem(
      await call(app, 'POST', url, { token: owner.token, body: { parentId: leaf!.id, tasks: [{ title: 'Sub' }] } }),
      409,
      'task_has_claims',
    ),
  );

  const other = await createProject(app, owner, circle.id);
  const [foreign] = await addTasks(app, owner, other.id, [{ title: 'Elsewhere' }]);
  const res = await call(app, 'POST', url, {
    token: owner.token,
    body: { parentId: foreign!.id, tasks: [{ title: 'Sub' }] },
  });
  t.ok(isProblem(res, 400, 'invalid_task_tree'), 'a parent from another project');

  t.equal(
    (await call(app, 'PATCH', `/v1/projects/${other.id}`, { token: owner.token, body: { status: 'cancelled' } }))
      .status,
    200,
  );
  t.ok(
    isProblem(
      await call(app, 'POST', `/v1/projects/${other.id}/tasks`, {
        token: owner.token,
        body: { tasks: [{ title: 'Late' }] },
      }),
      409,
      'project_cancelled',
    ),
  );
});

t.test('a project holds at most MAX_PROJECT_TASKS tasks, however many requests add them', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const project = await createProject(app, owner, circle.id);
  const [parent] = await addTasks(app, owner, project.id, [{ title: 'Chapter', children: [{ title: 'Page 1' }] }]);
  // All but one of the places, filled straight in SQL (the API would take four requests of 5000).
  await sql`
    INSERT INTO tasks (id, circle_id, project_id, title, description, weight, skills, slots, required_accepts, priority)
    SELECT gen_random_uuid(), ${circle.id}::uuid, ${project.id}::uuid, 'Seeded ' || i, '', 1, '{}', 1, 1, 0
    FROM generate_series(1, ${MAX_PROJECT_TASKS - 3}) AS i`.execute(db);
  const before = await taskTreeFootprint(db);

  const two = await call(app, 'POST', `/v1/projects/${project.id}/tasks`, {
    token: owner.token,
    body: { parentId: parent!.id, tasks: [{ title: 'Page 2' }, { title: 'Page 3' }] },
  });
  t.ok(isProblem(two, 400, 'invalid_task_tree'), `two more: 400 invalid_task_tree (got ${two.status})`);
  t.same(two.body.errors, [
    {
      path: 'body/tasks',
      message: `the project holds ${MAX_PROJECT_TASKS - 1} tasks; 2 more would pass its limit of ${MAX_PROJECT_TASKS}`,
    },
  ]);
  t.same(await taskTreeFootprint(db), before, 'nothing was created');

  t.equal((await addTasks(app, owner, project.id, [{ title: 'The last place' }])).length, 1, 'one more fits');
  const over = await call(app, 'POST', `/v1/projects/${project.id}/tasks`, {
    token: owner.token,
    body: { tasks: [{ title: 'One too many' }] },
  });
  t.ok(isProblem(over, 400, 'invalid_task_tree'), 'then the project is full');
  t.equal(
    Number(
      (await sql<{ n: string }>`SELECT count(*) AS n FROM tasks WHERE project_id = ${project.id}::uuid`.execute(db))
        .rows[0]!.n,
    ),
    MAX_PROJECT_TASKS,
  );
});
