// `npm run migrate`: create the database if missing and apply pending migrations, then exit.
import { loadDatabaseUrl } from '../src/config.js';
import { createDatabaseIfMissing, createDb } from '../src/infra/postgres.js';
import { migrateToLatest } from '../src/infra/migrations.js';

const databaseUrl = loadDatabaseUrl();
if (await createDatabaseIfMissing(databaseUrl)) console.log('database created');
const db = createDb(databaseUrl, 1);
try {
  console.log('applying migrations...');
  const applied = await migrateToLatest(db);
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'already up to date');
} finally {
  await db.destroy();
}
