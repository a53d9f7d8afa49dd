import t from 'tap';
import { sql } from 'kysely';
import { buildTestApp, call, createCircle, isProblem, registerUser, type Reply } from '../helper.js';
import {
  circleWithRoles,
  addTasks,
  completeTask,
  countRows,
  createProject,
  joinMembers,
} from '../marketplace-helpers.js';

// The contribution ledger: per-member totals, owner adjustments as compensating rows, and a table
// that refuses to be rewritten.

t.test('GET /projects/:id/contributions: totals per member, highest first, paged', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const members = await joinMembers(app, circle.id, 5);
  const outsider = await registerUser(app, 'outsider');
  const project = await createProject(app, owner, circle.id);
  const other = await createProject(app, owner, circle.id);
  const tasks = await addTasks(
    app,
    owner,
    project.id,
    Array.from({ length: 8 }, (_, i) => ({ title: `T${i}`, weight: 2 })),
  );
  const [elsewhere] = await addTasks(app, owner, other.id, [{ title: 'Elsewhere', weight: 50 }]);

  // m0: 2 tasks (200 + 300), m1: 1 task (400), m2: 1 task (200) + adjustment 300, m3: 1 task at 200, m4: nothing.
  await completeTask(app, owner, members[0]!, tasks[0]!.id);
  await completeTask(app, owner, members[0]!, tasks[1]!.id, 150);
  await completeTask(app, owner, members[1]!, tasks[2]!.id, 200);
  await completeTask(app, owner, members[2]!, tasks[3]!.id);
  await completeTask(app, owner, members[3]!, tasks[4]!.id);
  await completeTask(app, owner, members[4]!, elsewhere!.id);
  t.equal(
    (
      await call(app, 'POST', `/v1/projects/${project.id}/adjustments`, {
        token: owner.token,
        body: { userId: members[2]!.id, points: 300, reason: 'Organised the review sessions' },
      })
    ).status,
    201,
  );

  const res = await call(app, 'GET', `/v1/projects/${project.id}/contributions`, { token: members[4]!.token });
  t.equal(res.status, 200);
  const [m0, m1, m2, m3] = members;
  const expected = [
    [m0!.id, 500, 2],
    [m2!.id, 500, 1],
    [m1!.id, 400, 1],
    [m3!.id, 200, 1],
  ] as [string, number, number][];
  expected.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  t.same(
    res.body.items.map((r: { userId: string; points: number; acceptedTasks: number }) => [
      r.userId,
      r.points,
      r.acceptedTasks,
    ]),
    expected,
    'points include adjustments; ties in user id order',
  );
  const handles = Object.fromEntries(members.map((m) => [m.id, m.handle]));
  t.ok(
    res.body.items.every((r: { userId: string; handle: string }) => r.handle === handles[r.userId]),
    'with handles',
  );
  t.notOk(
    res.body.items.some((r: { userId: string }) => r.userId === members[4]!.id),
    'points in another project do not count',
  );

  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: Reply = await call(
      app,
      'GET',
      `/v1/projects/${project.id}/contributions?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      { token: owner.token },
    );
    t.equal(page.status, 200);
    seen.push(...page.body.items.map((r: { userId: string }) => r.userId));
    cursor = page.body.nextCursor;
    pages++;
  } while (cursor && pages < 10);
  t.same(
    seen,
    res.body.items.map((r: { userId: string }) => r.userId),
    'pages follow the same order, ties included, without repeats',
  );
  t.equal(pages, 4);

  // Points earned during a walk move no one across its pages: the walk counts what was committed
  // when its first page was read. m3, last, jumps to the top between pages.
  const first: Reply = await call(app, 'GET', `/v1/projects/${project.id}/contributions?limit=2`, {
    token: owner.token,
  });
  const adjusted = await call(app, 'POST', `/v1/projects/${project.id}/adjustments`, {
    token: owner.token,
    body: { userId: m3!.id, points: 1000, reason: 'Ran the launch' },
  });
  t.equal(adjusted.status, 201);
  const rest: Reply = await call(
    app,
    'GET',
    `/v1/projects/${project.id}/contributions?limit=10&cursor=${first.body.nextCursor}`,
    { token: owner.token },
  );
  t.same(
    [...first.body.items, ...rest.body.items].map((r: { userId: string; points: number }) => [r.userId, r.points]),
    expected.map(([id, points]) => [id, points]),
    'each member once, as the walk began',
  );
  const fresh = await call(app, 'GET', `/v1/projects/${project.id}/contributions?limit=1`, { token: owner.token });
  t.match(fresh.body.items, [{ userId: m3!.id, points: 1200 }], 'a new walk sees the new standings');
  const forged = Buffer.from(JSON.stringify(['9:1:5', 500, m0!.id])).toString('base64url');
  t.ok(
    isProblem(
      await call(app, 'GET', `/v1/projects/${project.id}/contributions?cursor=${forged}`, { token: owner.token }),
      400,
      'invalid_cursor',
    ),
    'a cursor with a snapshot Postgres would refuse',
  );

  t.ok(
    isProblem(
      await call(app, 'GET', `/v1/projects/${project.id}/contributions`, { token: outsider.token }),
      404,
      'project_not_found',
    ),
  );
  t.ok(
    isProblem(
      await call(
        app,
        'GET',
        `/v1/projects/${project.id}/contributions?cursor=${Buffer.from('["many","x"]').toString('base64url')}`,
        { token: owner.token },
      ),
      400,
      'invalid_cursor',
    ),
  );
  const empty = await call(
    app,
    'GET',
    `/v1/projects/${(await createProject(app, owner, circle.id)).id}/contributions`,
    { token: owner.token },
  );
  t.same(empty.body, { items: [], nextCursor: null });
});

t.test('adjustments: compensating rows with a reason, by owner or admin, never below zero', async (t) => {
  const { app, db } = await buildTestApp(t);
  const {
    owner,
    circle,
    admin,
    members: [alice, bob],
    outsider,
  } = await circleWithRoles(app, { members: 2 });
  const project = await createProject(app, owner, circle.id);
  const [task] = await addTasks(app, owner, project.id, [{ title: 'T', weight: 5 }]);
  await completeTask(app, owner, alice!, task!.id);
  const url = `/v1/projects/${project.id}/adjustments`;
  const adjust = (token: string, body: Record<string, unknown>) => call(app, 'POST', url, { token, body });
  const before = await countRows(db, 'contributions');

  t.ok(
    isProblem(await adjust(bob!.token, { userId: alice!.id, points: 10, reason: 'x' }), 403, 'forbidden'),
    'members cannot adjust',
  );
  t.ok(
    isProblem(await adjust(alice!.token, { userId: alice!.id, points: 10, reason: 'x' }), 403, 'forbidden'),
    'nor give themselves points',
  );
  t.ok(
    isProblem(await adjust(outsider.token, { userId: alice!.id, points: 10, reason: 'x' }), 404, 'project_not_found'),
  );
  // As nobody reviews their own work, no manager adjusts their own points: another one can.
  for (const manager of [owner, admin]) {
    const self = await adjust(manager.token, { userId: manager.id, points: 1000, reason: 'coordination' });
    t.ok(isProblem(self, 403, 'forbidden'), 'managers cannot adjust their own points');
    t.match(self.body.detail, /own points/);
  }
  t.ok(isProblem(await adjust(owner.token, { userId: outsider.id, points: 10, reason: 'x' }), 400, 'not_a_member'));
  const blank = await adjust(owner.token, { userId: alice!.id, points: 10, reason: '   ' });
  t.ok(isProblem(blank, 400, 'reason_required'));
  t.match(blank.body.errors, [{ path: 'body/reason' }]);
  for (const body of [
    { userId: alice!.id, points: 10 },
    { userId: alice!.id, points: 0, reason: 'zero' },
    { userId: alice!.id, points: 1.5, reason: 'x' },
    { userId: alice!.id, points: '10', reason: 'x' },
    { userId: 'nobody', points: 10, reason: 'x' },
    { userId: alice!.id, points: 10, reason: 'x', source: 'task' },
  ]) {
    t.ok(isProblem(await adjust(owner.token, body), 400, 'invalid_request'), JSON.stringify(body));
  }
  t.ok(
    isProblem(
      await adjust(owner.token, { userId: alice!.id, points: -501, reason: 'Too much' }),
      409,
      'adjustment_below_zero',
    ),
  );
  t.ok(
    isProblem(
      await adjust(owner.token, { userId: bob!.id, points: -1, reason: 'Nothing to take' }),
      409,
      'adjustment_below_zero',
    ),
  );
  t.equal(await countRows(db, 'contributions'), before, 'refused adjustments wrote nothing');

  const down = await adjust(owner.token, {
    userId: alice!.id,
    points: -200,
    reason: '  Part of the work was copied  ',
  });
  t.equal(down.status, 201);
  t.match(down.body, {
    circleId: circle.id,
    projectId: project.id,
    userId: alice!.id,
    source: 'adjustment',
    points: -200,
    reason: 'Part of the work was copied',
    createdBy: owner.id,
    taskId: null,
    claimId: null,
  });
  t.type(down.body.id, 'string');
  const up = await adjust(admin.token, { userId: bob!.id, points: 75, reason: 'Helped everyone' });
  t.equal(up.status, 201, 'admins adjust too');
  t.equal(
    (await adjust(owner.token, { userId: alice!.id, points: -300, reason: 'Down to zero exactly' })).status,
    201,
    'exactly zero is allowed',
  );

  const totals = await call(app, 'GET', `/v1/projects/${project.id}/contributions`, { token: owner.token });
  t.same(
    totals.body.items.map((r: { userId: string; points: number; acceptedTasks: number }) => [
      r.userId,
      r.points,
      r.acceptedTasks,
    ]),
    [
      [bob!.id, 75, 0],
      [alice!.id, 0, 1],
    ],
  );
  const rows = await db
    .selectFrom('contributions')
    .select(['source', 'points'])
    .where('user_id', '=', alice!.id)
    .orderBy('id')
    .execute();
  t.same(
    rows,
    [
      { source: 'task', points: 500 },
      { source: 'adjustment', points: -200 },
      { source: 'adjustment', points: -300 },
    ],
    'the original row is untouched',
  );
  const events = await db
    .selectFrom('events')
    .select(['subject_id', 'actor_id', 'payload'])
    .where('type', '=', 'contribution.recorded')
    .where(sql<boolean>`payload->>'source' = 'adjustment'`)
    .orderBy('id')
    .execute();
  t.match(events, [
    { subject_id: alice!.id, actor_id: owner.id, payload: { points: -200, reason: 'Part of the work was copied' } },
    { subject_id: bob!.id, actor_id: admin.id, payload: { points: 75 } },
    { subject_id: alice!.id, actor_id: owner.id, payload: { points: -300 } },
  ]);
  t.match((await call(app, 'GET', `/v1/projects/${project.id}`, { token: owner.token })).body.progress, {
    pointsAccepted: 75,
  });

  await call(app, 'PATCH', `/v1/projects/${project.id}`, { token: owner.token, body: { status: 'cancelled' } });
  t.ok(isProblem(await adjust(owner.token, { userId: bob!.id, points: 5, reason: 'late' }), 409, 'project_cancelled'));
});

t.test('concurrent deductions cannot take a member below zero together', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice] = await joinMembers(app, circle.id, 1);
  const project = await createProject(app, owner, circle.id);
  await call(app, 'POST', `/v1/projects/${project.id}/adjustments`, {
    token: owner.token,
    body: { userId: alice!.id, points: 100, reason: 'Start' },
  });
  const replies = await Promise.all(
    Array.from({ length: 10 }, () =>
      call(app, 'POST', `/v1/projects/${project.id}/adjustments`, {
        token: owner.token,
        body: { userId: alice!.id, points: -30, reason: 'Deduct' },
      }),
    ),
  );
  t.equal(replies.filter((r) => r.status === 201).length, 3);
  t.ok(replies.filter((r) => r.status !== 201).every((r) => isProblem(r, 409, 'adjustment_below_zero')));
  const total = await db
    .selectFrom('contributions')
    .select(sql<number>`sum(points)::int`.as('n'))
    .where('user_id', '=', alice!.id)
    .executeTakeFirstOrThrow();
  t.equal(total.n, 10);
});

t.test('the contributions table refuses UPDATE, DELETE and TRUNCATE', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice] = await joinMembers(app, circle.id, 1);
  const project = await createProject(app, owner, circle.id);
  const [task] = await addTasks(app, owner, project.id, [{ title: 'T' }]);
  await completeTask(app, owner, alice!, task!.id);

  await t.rejects(db.updateTable('contributions').set({ points: 1_000_000 }).execute(), { message: /append-only/ });
  await t.rejects(db.deleteFrom('contributions').execute(), { message: /append-only/ });
  await t.rejects(sql`TRUNCATE contributions CASCADE`.execute(db), { message: /append-only/ });
  const rows = await db.selectFrom('contributions').select('points').execute();
  t.same(rows, [{ points: 100 }], 'the row is as it was');
});
