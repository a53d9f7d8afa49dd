import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import t, { type Test } from 'tap';
import { createDb } from '../../src/infra/postgres.js';
import {
  MigrationLockTimeoutError,
  SchemaBehindError,
  assertMigrated,
  migrateToLatest,
  pendingMigrations,
  type MigrationProgress,
} from '../../src/infra/migrations.js';
import { migrations as schemaHistory } from '../../db/migrations/index.js';
import { heldTransaction } from '../held-transaction.js';
import { databaseUrl, withAdminClient } from '../setup/test-database.js';

// The migration runner on databases of its own: each migration in a transaction of its own, its
// lock waits bounded, its progress reported; and a start that does not migrate refusing a schema
// behind the code.

async function emptyDatabase(t: Test): Promise<{ url: string; db: Kysely<any> }> {
  const name = `ca_test_mig_${randomBytes(6).toString('hex')}`;
  await withAdminClient((c) => c.query(`CREATE DATABASE ${name}`));
  const db = createDb(databaseUrl(name), 2);
  t.teardown(async () => {
    await db.destroy();
    await withAdminClient((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  });
  return { url: databaseUrl(name), db };
}

const statement = (text: string): Migration => ({
  up: async (db) => {
    await sql.raw(text).execute(db);
  },
});

const tables = async (db: Kysely<any>) =>
  (
    await sql<{ name: string }>`
      SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'm\\_%' ORDER BY 1`.execute(
      db,
    )
  ).rows.map((r) => r.name);

t.test('each migration commits on its own; one waiting on a table in use gives up, keeping those before', async (t) => {
  const { db } = await emptyDatabase(t);
  await sql`CREATE TABLE m_busy (id int)`.execute(db);
  const migrations = {
    '0001_first': statement('CREATE TABLE m_first (id int)'),
    '0002_second': statement('CREATE TABLE m_second (id int)'),
    '0003_busy': statement('ALTER TABLE m_busy ADD COLUMN note text'),
    '0004_after': statement('CREATE TABLE m_after (id int)'),
  };
  const steps: Parameters<MigrationProgress>[0][] = [];

  // The test keeps a transaction open that read m_busy: its ALTER must wait for it.
  const reader = await heldTransaction(db, (trx) => sql`SELECT count(*) FROM m_busy`.execute(trx));
  const outcome = await Promise.race([
    migrateToLatest(db, { migrations, lockTimeoutMs: 300, progress: (step) => steps.push(step) }).then(
      () => 'applied',
      (err: unknown) => err,
    ),
    new Promise((done) => setTimeout(done, 60_000, 'still waiting after a minute')),
  ]);
  t.ok(
    outcome instanceof MigrationLockTimeoutError,
    `the busy migration gave up while the table was in use: ${outcome}`,
  );
  t.match(String(outcome), /migration 0003_busy waited 300 ms for a table another transaction is using/);
  await reader.commit();

  t.same(await tables(db), ['m_busy', 'm_first', 'm_second'], 'the two before it were applied and kept');
  t.same(await pendingMigrations(db, migrations), ['0003_busy', '0004_after'], 'and recorded; the rest are pending');
  t.same(
    steps.map((s) => [s.migration, s.index, s.of, s.tookMs === undefined ? 'start' : 'done']),
    [
      ['0001_first', 1, 4, 'start'],
      ['0001_first', 1, 4, 'done'],
      ['0002_second', 2, 4, 'start'],
      ['0002_second', 2, 4, 'done'],
      ['0003_busy', 3, 4, 'start'],
    ],
    'each step reported as it started and ended',
  );

  t.same(
    await migrateToLatest(db, { migrations, lockTimeoutMs: 300 }),
    ['0003_busy', '0004_after'],
    'run again, it finishes',
  );
  t.same(await tables(db), ['m_after', 'm_busy', 'm_first', 'm_second']);
  t.same(await migrateToLatest(db, { migrations }), [], 'and then has nothing to do');
});

t.test('the schema history applies to an empty database, and a start that does not migrate checks it', async (t) => {
  const { url, db } = await emptyDatabase(t);
  const refused = await assertMigrated(url).then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(refused instanceof SchemaBehindError, 'an empty database is refused');
  t.match(
    String(refused),
    /lacks \d+ migration\(s\) \(0001_foundation, .*run `npm run migrate`/,
    'naming what it lacks',
  );
  t.same(await migrateToLatest(db), Object.keys(schemaHistory), 'every migration, in order');
  await t.resolves(assertMigrated(url), 'a current schema is accepted');
  await t.rejects(assertMigrated(databaseUrl(`ca_test_mig_missing_${randomBytes(4).toString('hex')}`)), {
    message: /the database does not exist/,
  });
});
