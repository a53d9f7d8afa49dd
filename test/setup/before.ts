// Runs once before all test files (tap "before"): makes sure the migrated template database for
// the current migrations exists, with BullMQ's tables for the postgres queue backend in it too,
// so no test pays for creating them. It is built under a temporary name and renamed when
// complete, so a test never clones a half-migrated template.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { createDb } from '../../src/infra/postgres.js';
import { migrateToLatest } from '../../src/infra/migrations.js';
import { prepareQueueStore } from '../../src/jobs/queue-backend.js';
import { TEMPLATE_DB, TEST_CONNECT_TIMEOUT_MS, databaseUrl, withAdminClient } from './test-database.js';

const exists = await withAdminClient(
  async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [TEMPLATE_DB])).rowCount === 1,
);
if (!exists) {
  const building = `ca_building_${randomBytes(6).toString('hex')}`;
  await withAdminClient((c) => c.query(`CREATE DATABASE ${building}`));
  const db = createDb(databaseUrl(building), 1, TEST_CONNECT_TIMEOUT_MS);
  await migrateToLatest(db);
  await db.destroy();
  const store = { queueBackend: 'postgres', databaseUrl: databaseUrl(building), redisUrl: null } as const;
  await prepareQueueStore(store, pino({ level: 'silent' }));
  await withAdminClient(async (c) => {
    try {
      await c.query(`ALTER DATABASE ${building} RENAME TO ${TEMPLATE_DB}`);
    } catch {
      // Another run finished the same template first; ours is surplus.
      await c.query(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`);
    }
  });
}
