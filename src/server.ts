import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createDatabaseIfMissing, createDb } from './infra/postgres.js';
import { migrateToLatest } from './infra/migrations.js';
import { checkEvictionPolicy, createRequestRedis } from './infra/redis.js';
import { buildApp } from './app.js';
import { startWorkerRole } from './worker.js';

// The only file that listens and handles signals. ROLE picks what this process runs.

function readConfig(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`circle-actions: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}

async function prepareDatabase(config: Config, log: pino.Logger): Promise<void> {
  if (await createDatabaseIfMissing(config.databaseUrl)) log.info('database created');
  const db = createDb(config.databaseUrl, 1);
  try {
    const applied = await migrateToLatest(db);
    if (applied.length) log.info({ applied }, 'migrations applied');
  } finally {
    await db.destroy();
  }
}

async function warnIfEvicting(config: Config, log: pino.Logger): Promise<void> {
  const redis = createRequestRedis(config.redisUrl, { lazyConnect: true });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const policy = await checkEvictionPolicy(redis);
    if (policy)
      log.warn(`Redis maxmemory-policy is "${policy}": set it to "noeviction" or queued jobs can be silently lost`);
  } catch (err) {
    log.warn({ err }, 'could not check Redis maxmemory-policy');
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  const log = pino({ level: config.logLevel });
  await prepareDatabase(config, log);
  await warnIfEvicting(config, log);

  const app = config.role === 'worker' ? null : await buildApp({ config, logger: log });
  const workers = config.role === 'api' ? null : await startWorkerRole(config, app?.log ?? log);

  closeWithGrace({ delay: 15_000, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an error');
    else log.info({ signal }, 'shutting down');
    // Stop taking requests first (in-flight ones finish), then let running jobs finish.
    await app?.close();
    await workers?.close();
  });

  if (app) await app.listen({ host: config.host, port: config.port });
  log.info({ role: config.role }, 'circle-actions started');
}

main().catch((err) => {
  console.error('circle-actions failed to start:', err);
  process.exit(1);
});
