import t from 'tap';
import { createPool } from '../../src/infra/postgres.js';
import { createTestEnv } from '../helper.js';
import { withAdminClient } from '../setup/test-database.js';

// The pool every database handle is built on must outlive the loss of an idle connection: pg
// reports it as an 'error' event on the pool, and an event without a listener throws from the
// socket's data handler, which would end the process. It also happens at every test teardown that
// drops a database WITH (FORCE) just after a pool was ended (pool.end() resolves before the
// backends are gone), which is how a hand-made pool once failed a test under load.

t.test('an idle connection terminated under the pool is replaced, and the process carries on', async (t) => {
  const { config } = await createTestEnv(t);
  const pool = createPool(config.databaseUrl, 1, config.databaseConnectTimeoutMs);
  t.teardown(() => pool.end());
  const before = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  t.equal(pool.idleCount, 1, 'the connection waits idle in the pool');

  // The pool drops the client once pg has seen the connection end: wait for that, not for a time.
  // (Not events.once: it rejects on the very 'error' event this is about.)
  const removed = new Promise((resolve) => pool.once('remove', resolve));
  await withAdminClient((c) => c.query('SELECT pg_terminate_backend($1)', [before]));
  await removed;
  t.equal(pool.totalCount, 0, 'the dead connection left the pool');

  const after = (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  t.not(after, before, 'the next query runs on a new connection');
});

t.test('dates read as YYYY-MM-DD whatever DateStyle the database was given', async (t) => {
  const { config } = await createTestEnv(t);
  const name = new URL(config.databaseUrl).pathname.slice(1);
  await withAdminClient((c) => c.query(`ALTER DATABASE ${name} SET DateStyle = 'SQL, DMY'`));
  const pool = createPool(config.databaseUrl, 1, config.databaseConnectTimeoutMs);
  t.teardown(() => pool.end());
  const { rows } = await pool.query<{ day: string; style: string }>(
    "SELECT DATE '2026-03-08' AS day, current_setting('DateStyle') AS style",
  );
  t.equal(rows[0]!.day, '2026-03-08', 'a calendar day in the form the calendar code compares');
  t.match(rows[0]!.style, /^ISO/, 'the session asked for ISO');
});
