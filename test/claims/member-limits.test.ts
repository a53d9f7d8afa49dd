import t from 'tap';
import { sql } from 'kysely';
import type { Db } from '../../src/infra/postgres.js';
import { buildTestApp, call, createCircle, isProblem, registerUser } from '../helper.js';
import {
  addTasks,
  claimNext,
  claimTask,
  countCodes,
  createProject,
  joinMembers,
  projectWithTask,
  submitWork,
} from '../marketplace-helpers.js';

// The per-member rules: never two live claims by one member on one task, and never more active
// claims than MAX_LIVE_CLAIMS_PER_MEMBER, even when the member fires requests in parallel.

const activeClaims = async (db: Db, userId: string) =>
  (
    await db
      .selectFrom('claims')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('user_id', '=', userId)
      .where('status', '=', 'active')
      .executeTakeFirstOrThrow()
  ).n;

t.test('one member claiming a multi-slot task twice at once: one 201, one already_claimed', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [member] = await joinMembers(app, circle.id, 1);
  const { task } = await projectWithTask(app, owner, circle.id, { slots: 5 });

  for (let round = 0; round < 3; round++) {
    const replies = await Promise.all([claimTask(app, member!, task.id), claimTask(app, member!, task.id)]);
    t.same(countCodes(replies), { 201: 1, already_claimed: 1 }, `round ${round}`);
    const loser = replies.find((r) => r.status !== 201)!;
    t.ok(isProblem(loser, 409, 'already_claimed'));
    const winner = replies.find((r) => r.status === 201)!;
    const released = await call(app, 'POST', `/v1/claims/${winner.body.id}/release`, { token: member!.token });
    t.equal(released.status, 200);
  }
  const again = await claimTask(app, member!, task.id);
  t.equal(again.status, 201);
  t.ok(isProblem(await claimTask(app, member!, task.id), 409, 'already_claimed'), 'sequentially too');
  const row = await db.selectFrom('tasks').select('live_claims').where('id', '=', task.id).executeTakeFirstOrThrow();
  t.equal(row.live_claims, 1);

  // A submitted claim still holds the task for that member.
  t.equal((await submitWork(app, member!, again.body.id)).status, 201);
  t.ok(isProblem(await claimTask(app, member!, task.id), 409, 'already_claimed'));
});

t.test('the per-member cap: claim_limit_reached beyond it, sequentially and in parallel', async (t) => {
  const { app, db } = await buildTestApp(t, { MAX_LIVE_CLAIMS_PER_MEMBER: '2' });
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const project = await createProject(app, owner, circle.id);
  const tasks = await addTasks(
    app,
    owner,
    project.id,
    Array.from({ length: 12 }, (_, i) => ({ title: `Task ${i}` })),
  );

  t.equal((await claimTask(app, alice!, tasks[0]!.id)).status, 201);
  t.equal((await claimTask(app, alice!, tasks[1]!.id)).status, 201);
  t.ok(isProblem(await claimTask(app, alice!, tasks[2]!.id), 409, 'claim_limit_reached'));
  t.ok(
    isProblem(await claimNext(app, alice!, project.id), 409, 'claim_limit_reached'),
    'claims/next respects the cap too',
  );

  // Submitting frees a place under the cap (the submitted claim still holds its task slot).
  const mine = await db
    .selectFrom('claims')
    .select('id')
    .where('user_id', '=', alice!.id)
    .orderBy('created_at')
    .execute();
  t.equal((await submitWork(app, alice!, mine[0]!.id)).status, 201);
  t.equal((await claimTask(app, alice!, tasks[2]!.id)).status, 201);
  t.equal(await activeClaims(db, alice!.id), 2);

  // Bob fires six claims at once: exactly two succeed, the rest hit the cap; no 5xx.
  const parallel = await Promise.all(tasks.slice(3, 9).map((task) => claimTask(app, bob!, task.id)));
  t.same(countCodes(parallel), { 201: 2, claim_limit_reached: 4 });
  t.equal(await activeClaims(db, bob!.id), 2, 'never more than the cap active');

  // And a burst of claims/next likewise.
  const [carol] = await joinMembers(app, circle.id, 1);
  const next = await Promise.all(Array.from({ length: 6 }, () => claimNext(app, carol!, project.id)));
  t.same(countCodes(next), { 201: 2, claim_limit_reached: 4 });
  t.equal(await activeClaims(db, carol!.id), 2);
  t.equal(new Set(next.filter((r) => r.status === 201).map((r) => r.body.taskId)).size, 2, 'two different tasks');
});

t.test('one member calling claims/next twice at once gets two different tasks', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [member] = await joinMembers(app, circle.id, 1);
  const project = await createProject(app, owner, circle.id);
  await addTasks(app, owner, project.id, [
    { title: 'Popular', slots: 5, priority: 1 },
    { title: 'Other', slots: 5 },
  ]);

  const replies = await Promise.all([claimNext(app, member!, project.id), claimNext(app, member!, project.id)]);
  t.same(countCodes(replies), { 201: 2 });
  t.equal(new Set(replies.map((r) => r.body.taskId)).size, 2, 'the second claim moved on to the other task');
  const third = await claimNext(app, member!, project.id);
  t.ok(isProblem(third, 409, 'no_claimable_task'), 'nothing left that the member does not already hold');
  const live = await db
    .selectFrom('claims')
    .select(sql<number>`count(DISTINCT task_id)::int`.as('n'))
    .where('user_id', '=', member!.id)
    .executeTakeFirstOrThrow();
  t.equal(live.n, 2);
});

t.test('a burst of parallel claims by one member fills exactly the cap, never 5xx', async (t) => {
  const { app, db } = await buildTestApp(t, { MAX_LIVE_CLAIMS_PER_MEMBER: '12' });
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [member] = await joinMembers(app, circle.id, 1);
  const project = await createProject(app, owner, circle.id);
  const tasks = await addTasks(
    app,
    owner,
    project.id,
    Array.from({ length: 16 }, (_, i) => ({ title: `Task ${i}` })),
  );

  const replies = await Promise.all(tasks.map((task) => claimTask(app, member!, task.id)));
  t.same(countCodes(replies), { 201: 12, claim_limit_reached: 4 });
  const won = 12;
  t.equal(await activeClaims(db, member!.id), won);
  const slots = await db
    .selectFrom('claims')
    .select('member_slot')
    .where('user_id', '=', member!.id)
    .where('status', '=', 'active')
    .execute();
  t.equal(new Set(slots.map((s) => s.member_slot)).size, won, 'each active claim holds its own member slot');
});
