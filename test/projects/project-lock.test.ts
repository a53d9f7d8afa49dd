import t from 'tap';
import { sql } from 'kysely';
import { lockProjectWithRole } from '../../src/projects/projects.repository.js';
import { heldTransaction } from '../held-transaction.js';
import { buildTestApp, createCircle, registerUser } from '../helper.js';
import { answeredOrBlocked, backendPid } from '../lock-waits.js';
import { addTasks, claimNext, claimTask, createProject, joinMembers } from '../marketplace-helpers.js';

// Manager writes (task posts, dependency edits, adjustments, settle requests, project edits) lock
// the project row while they work. Claims insert rows whose project_id foreign key Postgres checks
// with a KEY SHARE lock on that row, so the writers' lock must leave KEY SHARE free: otherwise a
// 5,000-task post holds up every claim in the project, and a claim already holding task X waits
// for a post that waits for X (a deadlock, one side answering 500). The test holds the writers'
// lock itself and watches Postgres's lock queue, so the interleaving is certain.

t.test('a manager write holding the project holds up no claim, and cannot deadlock with one', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice, bob] = await joinMembers(app, circle.id, 2);
  const project = await createProject(app, owner, circle.id);
  const [first, second] = await addTasks(app, owner, project.id, [{ title: 'First' }, { title: 'Second' }]);

  // What a task post naming `first` as a dependency does: the project first, then the task.
  const writer = await heldTransaction(db, async (trx) => {
    t.ok(await lockProjectWithRole(trx, project.id, owner.id), 'the writer holds the project');
    return backendPid(trx);
  });

  const claim = await answeredOrBlocked(db, writer.value, claimTask(app, alice!, first!.id), 60_000);
  t.ok('answered' in claim, `a claim is answered while the project is held (${JSON.stringify(claim)})`);
  if ('answered' in claim) t.equal(claim.answered.status, 201);

  const next = await answeredOrBlocked(db, writer.value, claimNext(app, bob!, project.id), 60_000);
  t.ok('answered' in next, `claims/next is answered while the project is held (${JSON.stringify(next)})`);
  if ('answered' in next) t.match(next.answered, { status: 201, body: { taskId: second!.id } });

  // The writer goes on to the task the claim took: nothing waits on it any more, so no cycle.
  await writer.commit();
  const claimed = await db
    .selectFrom('claims')
    .select(['task_id', 'status'])
    .where('project_id', '=', project.id)
    .orderBy('task_id')
    .execute();
  t.equal(claimed.length, 2, 'both claims were stored');
  t.ok(
    claimed.every((c) => c.status === 'active'),
    'both are active',
  );
});

t.test('two manager writes on one project still take turns', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const project = await createProject(app, owner, circle.id);

  const writer = await heldTransaction(db, async (trx) => {
    await lockProjectWithRole(trx, project.id, owner.id);
    return backendPid(trx);
  });
  // A second task post must wait: task order numbers (seq) are handed out under this lock.
  const post = addTasks(app, owner, project.id, [{ title: 'Later' }]);
  const second = await answeredOrBlocked(db, writer.value, post);
  t.ok('blocked' in second, 'the second writer waits for the first');
  await writer.commit();
  t.equal((await post).length, 1, 'and goes on once the first is done');
  const { rows } = await sql<{
    n: number;
  }>`SELECT count(*)::int AS n FROM tasks WHERE project_id = ${project.id}::uuid`.execute(db);
  t.equal(rows[0]!.n, 1);
});
