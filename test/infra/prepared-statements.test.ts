import t from 'tap';
import { sql } from 'kysely';
import { createDb } from '../../src/infra/postgres.js';
import { claimNextTask } from '../../src/claims/claims.repository.js';
import { buildTestApp, createCircle, registerUser } from '../helper.js';
import { createProject, addTasks, joinMembers } from '../marketplace-helpers.js';

// claims/next runs as a named prepared statement; everything else stays unnamed. Checked on one
// connection (a pool of one), since prepared statements belong to a Postgres session.

t.test('the claim statement is prepared once per connection and prepared again on a new one', async (t) => {
  const { app, config } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const members = await joinMembers(app, circle.id, 3);
  const project = await createProject(app, owner, circle.id);
  await addTasks(app, owner, project.id, [{ title: 'a', weight: 1 }, { title: 'b', weight: 1 }, { title: 'c', weight: 1 }, { title: 'd', weight: 1 }]);

  const db = createDb(config.databaseUrl, 1);
  t.teardown(() => db.destroy());
  const prepared = async () => (await sql<{ name: string; statement: string }>`SELECT name, statement FROM pg_prepared_statements`.execute(db)).rows;
  const backend = async () => (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db)).rows[0]!.pid;

  const first = await claimNextTask(db, project.id, members[0]!.id, null, 10);
  const second = await claimNextTask(db, project.id, members[1]!.id, ['design'], 10);
  t.ok(first && second, 'both claims made');
  t.not(first!.task_id, second!.task_id);
  const statements = await prepared();
  t.equal(statements.length, 1, 'one statement for both calls: the skills are a parameter, not part of the text');
  t.match(statements[0]!.name, /^ca_[0-9a-f]{24}$/);
  t.match(statements[0]!.statement, /FOR UPDATE OF t\s+SKIP LOCKED/);

  // The waiting variant (no SKIP LOCKED) is a different text, so a second name.
  await claimNextTask(db, project.id, members[2]!.id, null, 10, false);
  t.equal((await prepared()).length, 2);

  // A terminated backend: the pool replaces the connection and pg prepares the statement again.
  const old = await backend();
  const admin = createDb(config.databaseUrl, 1);
  t.teardown(() => admin.destroy());
  await sql`SELECT pg_terminate_backend(${old}::int)`.execute(admin);
  // Queries fail until pg has seen the connection end and the pool has dropped it.
  for (let attempt = 0; ; attempt++) {
    try {
      await sql`SELECT 1`.execute(db);
      break;
    } catch (err) {
      if (attempt >= 20) throw err;
    }
  }
  const again = await claimNextTask(db, project.id, members[0]!.id, null, 10);
  t.ok(again, 'claims again on the new connection');
  t.not(await backend(), old);
  t.equal((await prepared()).length, 1);
});
