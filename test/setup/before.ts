// Runs once before all test files (tap "before"): builds a fresh, fully migrated template database.
import { createDb } from '../../src/infra/postgres.js';
import { migrateToLatest } from '../../src/infra/migrations.js';
import { TEMPLATE_DB, databaseUrl, withAdminClient } from './test-database.js';

await withAdminClient(async (client) => {
  await client.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DB} WITH (FORCE)`);
  // Databases left behind by interrupted runs.
  const stale = await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'ca_test_%'`);
  for (const { datname } of stale.rows) await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  await client.query(`CREATE DATABASE ${TEMPLATE_DB}`);
});
const db = createDb(databaseUrl(TEMPLATE_DB), 1);
await migrateToLatest(db);
await db.destroy();
