import t from 'tap';
import { sql } from 'kysely';
import { buildApp } from '../../src/app.js';
import { buildTestApp, createCircle, createTestEnv, isProblem, registerUser } from '../helper.js';
import {
  addTasks,
  claimNext,
  claimTask,
  countCodes,
  createProject,
  joinMembers,
  projectWithTask,
} from '../marketplace-helpers.js';

// Claiming is race-free: never more live claims on a task than its slots, whatever the number of
// concurrent requests or API processes. Everything here runs against real Postgres.

t.test('100 members rushing a one-slot task: exactly one wins, 99 get task_full', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const members = await joinMembers(app, circle.id, 100);
  const { task } = await projectWithTask(app, owner, circle.id);

  const replies = await Promise.all(members.map((m) => claimTask(app, m, task.id)));
  t.same(countCodes(replies), { 201: 1, task_full: 99 }, 'one 201, 99 x 409 task_full, no 5xx');
  t.ok(replies.filter((r) => r.status !== 201).every((r) => isProblem(r, 409, 'task_full')));
  const winner = replies.find((r) => r.status === 201)!;
  t.match(winner.body, { taskId: task.id, status: 'active' });

  const row = await db.selectFrom('tasks').select('live_claims').where('id', '=', task.id).executeTakeFirstOrThrow();
  t.equal(row.live_claims, 1);
  const live = await db
    .selectFrom('claims')
    .select(['id', 'user_id'])
    .where('task_id', '=', task.id)
    .where('status', 'in', ['active', 'submitted'])
    .execute();
  t.equal(live.length, 1, 'exactly one live claim row');
  t.equal(live[0]!.id, winner.body.id);
  t.equal(live[0]!.user_id, winner.body.userId);
  const created = await db.selectFrom('events').select('subject_id').where('type', '=', 'claim.created').execute();
  t.same(
    created.map((e) => e.subject_id),
    [winner.body.id],
    'one claim.created event, for the winner',
  );
});

t.test('three slots: exactly three of 60 concurrent claims win', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const members = await joinMembers(app, circle.id, 60);
  const { task } = await projectWithTask(app, owner, circle.id, { slots: 3 });

  const replies = await Promise.all(members.map((m) => claimTask(app, m, task.id)));
  t.same(countCodes(replies), { 201: 3, task_full: 57 });
  const winners = new Set(replies.filter((r) => r.status === 201).map((r) => r.body.userId));
  t.equal(winners.size, 3, 'three different members hold it');
  const row = await db.selectFrom('tasks').select('live_claims').where('id', '=', task.id).executeTakeFirstOrThrow();
  t.equal(row.live_claims, 3);
  const live = await db
    .selectFrom('claims')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('task_id', '=', task.id)
    .where('status', '=', 'active')
    .executeTakeFirstOrThrow();
  t.equal(live.n, 3);
});

t.test('50 members calling claims/next on 20 tasks: 20 distinct tasks claimed, 30 no_claimable_task', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const members = await joinMembers(app, circle.id, 50);
  const project = await createProject(app, owner, circle.id);
  const tasks = await addTasks(
    app,
    owner,
    project.id,
    Array.from({ length: 20 }, (_, i) => ({ title: `Task ${i}` })),
  );

  const replies = await Promise.all(members.map((m) => claimNext(app, m, project.id)));
  t.same(countCodes(replies), { 201: 20, no_claimable_task: 30 });
  const claimed = replies.filter((r) => r.status === 201).map((r) => r.body.taskId);
  t.equal(new Set(claimed).size, 20, 'every winner got a different task');
  t.same(new Set(claimed), new Set(tasks.map((x) => x.id)), 'every task got claimed');
  const rows = await db.selectFrom('tasks').select('live_claims').where('project_id', '=', project.id).execute();
  t.ok(
    rows.every((r) => r.live_claims === 1),
    'each task holds exactly one live claim',
  );
  const live = await db
    .selectFrom('claims')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('project_id', '=', project.id)
    .where('status', '=', 'active')
    .executeTakeFirstOrThrow();
  t.equal(live.n, 20);
});

t.test('claims/next hands out a multi-slot task up to its slots, highest priority first', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const members = await joinMembers(app, circle.id, 12);
  const project = await createProject(app, owner, circle.id);
  const [low, high] = await addTasks(app, owner, project.id, [
    { title: 'Low', slots: 4 },
    { title: 'High', slots: 4, priority: 5 },
  ]);

  const replies = await Promise.all(members.map((m) => claimNext(app, m, project.id)));
  t.same(countCodes(replies), { 201: 8, no_claimable_task: 4 });
  const perTask = await db
    .selectFrom('tasks')
    .select(['id', 'live_claims'])
    .where('project_id', '=', project.id)
    .execute();
  t.same(Object.fromEntries(perTask.map((r) => [r.id, r.live_claims])), { [low!.id]: 4, [high!.id]: 4 });

  // With capacity left, the order is visible: the high-priority task goes first.
  const fresh = await createProject(app, owner, circle.id);
  const [, top] = await addTasks(app, owner, fresh.id, [
    { title: 'Older, low' },
    { title: 'Newer, high', priority: 10 },
  ]);
  const first = await claimNext(app, members[0]!, fresh.id);
  t.equal(first.body.taskId, top!.id);
});

t.test('two API instances sharing the database: still one winner per slot', async (t) => {
  const env = await createTestEnv(t);
  const apiA = await buildApp({ config: env.config, logger: false });
  const apiB = await buildApp({ config: env.config, logger: false });
  t.teardown(() => apiA.close());
  t.teardown(() => apiB.close());
  await Promise.all([apiA.ready(), apiB.ready()]);
  const apis = [apiA, apiB];

  const owner = await registerUser(apiA, 'owner');
  const circle = await createCircle(apiA, owner);
  const members = await joinMembers(apiB, circle.id, 100);

  // One-slot task, 100 claims split across the two instances.
  const { task } = await projectWithTask(apiA, owner, circle.id);
  const one = await Promise.all(members.map((m, i) => claimTask(apis[i % 2]!, m, task.id)));
  t.same(countCodes(one), { 201: 1, task_full: 99 });
  const single = await env.db
    .selectFrom('tasks')
    .select('live_claims')
    .where('id', '=', task.id)
    .executeTakeFirstOrThrow();
  t.equal(single.live_claims, 1);

  // Three slots.
  const { task: triple } = await projectWithTask(apiB, owner, circle.id, { slots: 3 });
  const three = await Promise.all(members.map((m, i) => claimTask(apis[(i + 1) % 2]!, m, triple.id)));
  t.same(countCodes(three), { 201: 3, task_full: 97 });

  // claims/next on 20 tasks, 50 members split across the instances.
  const project = await createProject(apiA, owner, circle.id);
  await addTasks(
    apiA,
    owner,
    project.id,
    Array.from({ length: 20 }, (_, i) => ({ title: `Task ${i}` })),
  );
  const next = await Promise.all(members.slice(50).map((m, i) => claimNext(apis[i % 2]!, m, project.id)));
  t.same(countCodes(next), { 201: 20, no_claimable_task: 30 });
  t.equal(new Set(next.filter((r) => r.status === 201).map((r) => r.body.taskId)).size, 20);

  const overfull = await env.db.selectFrom('tasks').select('id').where(sql<boolean>`live_claims > slots`).execute();
  t.same(overfull, []);
  const counted = await sql<{ id: string }>`
    SELECT t.id FROM tasks t
    WHERE t.live_claims <> (SELECT count(*) FROM claims c WHERE c.task_id = t.id AND c.status IN ('active', 'submitted'))`.execute(
    env.db,
  );
  t.same(counted.rows, [], 'live_claims matches the live claim rows on every task');
});
