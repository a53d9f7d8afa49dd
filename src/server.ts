import closeWithGrace from 'close-with-grace';
import type { Logger } from 'pino';
import { createLogger } from './infra/logger.js';
import { ConfigError, loadEnvFileIfPresent, loadSettings, withServices, type Config, type Settings } from './config.js';
import { createDatabaseIfMissing, createDb } from './infra/postgres.js';
import {
  MigrationLockTimeoutError,
  SchemaBehindError,
  assertMigrated,
  logMigrationProgress,
  migrateToLatest,
} from './infra/migrations.js';
import { prepareQueueStore } from './jobs/queue-backend.js';
import { buildApp } from './app.js';
import { startWorkerRole, workerMetrics } from './worker.js';
import { EmbeddedMode } from './embedded-mode.js';
import { DataFolderInUseError } from './infra/data-folder-lock.js';
import { EmbeddedPostgresError } from './infra/embedded-postgres.js';

// The only file that listens and handles signals. ROLE picks what this process runs.

function readSettings(): Settings {
  try {
    loadEnvFileIfPresent();
    return loadSettings();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`circle-actions: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}

async function prepareDatabase(config: Config, log: Logger): Promise<void> {
  if (!config.migrateOnStart) {
    await assertMigrated(config.databaseUrl);
    return;
  }
  if (await createDatabaseIfMissing(config.databaseUrl)) log.info('database created');
  const db = createDb(config.databaseUrl, 1);
  try {
    const applied = await migrateToLatest(db, { progress: logMigrationProgress(log) });
    if (applied.length) log.info({ applied }, 'migrations applied');
  } finally {
    await db.destroy();
  }
}

/** What this process has started so far: stopped in reverse order on shutdown or a failed start. */
const running: {
  embedded?: EmbeddedMode;
  app?: Awaited<ReturnType<typeof buildApp>>;
  workers?: Awaited<ReturnType<typeof startWorkerRole>>;
} = {};

let shuttingDown = false;

async function stopRunning(): Promise<void> {
  // Requests and jobs wind down together: the server stops taking requests and finishes those in
  // flight while the workers stop taking jobs and finish theirs. One after the other, the workers
  // would go on starting jobs while the requests drained, and the grace period would run out
  // on them. The embedded database they all use stops last.
  await Promise.all([running.app?.close(), running.workers?.close()]);
  await running.embedded?.stop();
}

/** The longest a shutdown may take before the process exits anyway (close-with-grace's delay). */
const SHUTDOWN_GRACE_MS = 15_000;

/**
 * The embedded PostgreSQL died under the service (killed, out of memory): nothing the service
 * does can work again, yet /healthz would go on answering 200. It stops what runs and exits
 * non-zero, so a supervisor (or the person at the terminal) sees it and starts it again, which
 * recovers the data folder as after a crash.
 */
function stopAfterDatabaseLoss(log: Logger): void {
  if (shuttingDown) return;
  shuttingDown = true;
  log.fatal('the embedded PostgreSQL is gone: stopping the service (start it again to recover)');
  setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS).unref();
  void stopRunning()
    .catch((err) => log.error({ err }, 'while stopping'))
    .finally(() => process.exit(1));
}

async function main(): Promise<void> {
  const settings = readSettings();
  const log = createLogger(settings.logLevel);

  closeWithGrace({ delay: SHUTDOWN_GRACE_MS, logger: log }, async ({ signal, err }) => {
    shuttingDown = true;
    if (err) log.error({ err }, 'shutting down after an error');
    else log.info({ signal }, 'shutting down');
    await stopRunning();
  });
  // However the process ends (a shutdown over its delay included), the embedded server stops too.
  process.once('exit', () => running.embedded?.stopNow());

  let config: Config;
  if (settings.databaseUrl) config = withServices(settings, {});
  else {
    running.embedded = new EmbeddedMode(settings, log, () => stopAfterDatabaseLoss(log));
    config = await running.embedded.start();
  }
  await prepareDatabase(config, log);
  await prepareQueueStore(config, log);

  // Every role listens: a worker process serves its health, its job metrics and the operator
  // pages (serve: 'operations'), so it can be probed and scraped like the API.
  const metrics = config.role === 'api' ? undefined : workerMetrics();
  running.app = await buildApp({
    config,
    logger: log,
    metricSources: metrics?.sources,
    serve: config.role === 'worker' ? 'operations' : 'api',
  });
  if (metrics) running.workers = await startWorkerRole(config, running.app.log, metrics);
  await running.app.listen({ host: config.host, port: config.port });
  log.info({ role: config.role }, 'circle-actions started');
}

/** Start-up problems the operator fixes: one line, no stack. */
const forOperator = (err: unknown) =>
  err instanceof ConfigError ||
  err instanceof DataFolderInUseError ||
  err instanceof EmbeddedPostgresError ||
  err instanceof MigrationLockTimeoutError ||
  err instanceof SchemaBehindError;

main().catch(async (err) => {
  // A signal during start-up: the shutdown under way stops what started and exits.
  if (shuttingDown) return;
  if (forOperator(err)) console.error(`circle-actions: ${(err as Error).message}`);
  else console.error('circle-actions failed to start:', err);
  await stopRunning().catch((stopErr) => console.error('circle-actions: while stopping:', stopErr));
  process.exit(1);
});
