import { pino } from 'pino';
import { ConfigError, loadEnvFileIfPresent, loadSettings } from './config.js';
import { createDatabaseIfMissing, createDb } from './infra/postgres.js';
import { MigrationLockTimeoutError, logMigrationProgress, migrateToLatest } from './infra/migrations.js';
import { prepareQueueStore } from './jobs/queue-backend.js';

// `npm run migrate`, or `node dist/src/migrate.js` from a build (the container's one-shot migrate
// service): creates the database if missing, applies pending migrations and readies the queue
// store (BullMQ's tables on the postgres backend), then exits, printing each migration as it runs.
// The server does the same at every start under advisory locks unless MIGRATE_ON_START=false;
// running it once first, as a deploy step, keeps a fleet's starts quick.

async function main(): Promise<void> {
  loadEnvFileIfPresent();
  const settings = loadSettings();
  if (!settings.databaseUrl) throw new ConfigError('missing setting DATABASE_URL: the Postgres connection string');
  const log = pino({ level: settings.logLevel });
  if (await createDatabaseIfMissing(settings.databaseUrl)) log.info('database created');
  const db = createDb(settings.databaseUrl, 1);
  try {
    const applied = await migrateToLatest(db, { progress: logMigrationProgress(log) });
    log.info({ applied }, applied.length ? 'migrations applied' : 'already up to date');
  } finally {
    await db.destroy();
  }
  await prepareQueueStore({ ...settings, databaseUrl: settings.databaseUrl }, log);
}

main().catch((err) => {
  if (err instanceof ConfigError || err instanceof MigrationLockTimeoutError)
    console.error(`circle-actions: ${err.message}`);
  else console.error('circle-actions: migration failed:', err);
  process.exit(1);
});
