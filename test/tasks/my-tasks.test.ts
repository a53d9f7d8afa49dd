import t from 'tap';
import { buildTestApp, call, createCircle, registerUser } from '../helper.js';
import { addTasks, claimTask, completeTask, createProject, joinMembers } from '../marketplace-helpers.js';

// GET /v1/me/tasks: the tasks a member could claim now in every circle they belong to, in
// claims/next order (priority first, then oldest), without the ones they hold or contributed to.

const titles = (body: { items: { title: string }[] }) => body.items.map((i) => i.title);

t.test('my board across circles: claimable tasks only, in claims/next order, by skill, page by page', async (t) => {
  const { app } = await buildTestApp(t);
  const [alice, bob] = [await registerUser(app, 'alice'), await registerUser(app, 'bob')];
  const north = await createCircle(app, alice);
  const south = await createCircle(app, bob);
  const elsewhere = await createCircle(app, bob);
  const [member] = await joinMembers(app, north.id, 1);
  t.equal((await call(app, 'POST', `/v1/circles/${south.id}/members`, { token: member!.token, body: {} })).status, 201);

  const n = await createProject(app, alice, north.id, { title: 'North' });
  const s = await createProject(app, bob, south.id, { title: 'South' });
  const draft = await createProject(app, bob, south.id, { title: 'Draft', status: 'draft' });
  const other = await createProject(app, bob, elsewhere.id, { title: 'Not mine' });
  const [n1, , , nHeld, nDone] = await addTasks(app, alice, n.id, [
    { title: 'n1 urgent', priority: 2, skills: ['writing'] },
    { title: 'n2', priority: 0, key: 'n2' },
    { title: 'n3 blocked', priority: 2, dependsOn: ['n2'] },
    { title: 'n held', priority: 1 },
    { title: 'n contributed', priority: 1, slots: 3, requiredAccepts: 3 },
  ]);
  const [s1] = await addTasks(app, bob, s.id, [
    { title: 's1', priority: 1, skills: ['writing'] },
    { title: 's2', priority: 0, skills: ['design'] },
    { title: 's3 urgent', priority: 2 },
  ]);
  await addTasks(app, bob, draft.id, [{ title: 'draft task', priority: 2 }]);
  await addTasks(app, bob, other.id, [{ title: 'other circle', priority: 2 }]);
  t.equal((await claimTask(app, member!, nHeld!.id)).status, 201);
  await completeTask(app, alice, member!, nDone!.id);

  const board = await call(app, 'GET', '/v1/me/tasks', { token: member!.token });
  t.equal(board.status, 200);
  t.same(titles(board.body), ['n1 urgent', 's3 urgent', 's1', 'n2', 's2']);
  t.equal(board.body.nextCursor, null);
  t.match(board.body.items[0], { id: n1!.id, projectId: n.id, claimable: true, priority: 2 });

  const writing = await call(app, 'GET', '/v1/me/tasks?skill=Writing', { token: member!.token });
  t.same(titles(writing.body), ['n1 urgent', 's1']);

  // Two at a time, with tasks added between pages: each new one shows up once, in its place.
  const seen: string[] = [];
  let cursor: string | null = null;
  let added = 0;
  do {
    const page: { status: number; body: { items: { title: string }[]; nextCursor: string | null } } = await call(
      app,
      'GET',
      `/v1/me/tasks?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      { token: member!.token },
    );
    t.equal(page.status, 200);
    seen.push(...titles(page.body));
    cursor = page.body.nextCursor;
    if (added++ < 2) await addTasks(app, bob, s.id, [{ title: `late ${added}`, priority: 0 }]);
  } while (cursor);
  t.same(seen, ['n1 urgent', 's3 urgent', 's1', 'n2', 's2', 'late 1', 'late 2']);

  // Claiming one takes it off the board; leaving a circle takes its tasks off.
  t.equal((await claimTask(app, member!, s1!.id)).status, 201);
  t.notOk(titles((await call(app, 'GET', '/v1/me/tasks', { token: member!.token })).body).includes('s1'));
  t.equal(
    (await call(app, 'DELETE', `/v1/circles/${south.id}/members/${member!.id}`, { token: member!.token })).status,
    204,
  );
  t.same(titles((await call(app, 'GET', '/v1/me/tasks', { token: member!.token })).body), ['n1 urgent', 'n2']);
});

t.test('my board: bad cursor and limits are 400, a member of no circle gets an empty page', async (t) => {
  const { app } = await buildTestApp(t);
  const loner = await registerUser(app, 'loner');
  const empty = await call(app, 'GET', '/v1/me/tasks', { token: loner.token });
  t.same(empty.body, { items: [], nextCursor: null });
  t.equal((await call(app, 'GET', '/v1/me/tasks?cursor=nonsense', { token: loner.token })).status, 400);
  t.equal((await call(app, 'GET', '/v1/me/tasks?limit=201', { token: loner.token })).status, 400);
  t.equal((await call(app, 'GET', '/v1/me/tasks')).status, 401);
});
