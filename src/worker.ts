import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config.js';
import { createDb } from './infra/postgres.js';
import { createWorkerRedis } from './infra/redis.js';
import { Queues } from './jobs/queues.js';
import { startWorkers, type ProcessorMap } from './jobs/worker-runtime.js';
import { keepSchedules, upsertSchedules } from './jobs/schedules.js';
import { maintenanceProcessor } from './jobs/maintenance.job.js';
import { claimExpiryProcessor } from './claims/claim-expiry.job.js';
import { reviewDeadlineProcessor } from './reviews/review-deadline.job.js';
import { settlementProcessor } from './settlements/settlement.job.js';

export const processors: ProcessorMap = {
  maintenance: maintenanceProcessor,
  'claim-expiry': claimExpiryProcessor,
  'review-deadline': reviewDeadlineProcessor,
  settlements: settlementProcessor,
};

/**
 * The worker role: consumes every queue and keeps the repeating schedules declared. Runs beside
 * the API in one process (ROLE=all) or on its own (ROLE=worker), any number of copies.
 */
export async function startWorkerRole(config: Config, log: FastifyBaseLogger) {
  const db = createDb(config.databaseUrl, config.databasePoolSize);
  const consumerRedis = createWorkerRedis(config.redisUrl);
  const producerRedis = createWorkerRedis(config.redisUrl);
  consumerRedis.on('error', (err) => log.debug({ err }, 'redis connection error'));
  producerRedis.on('error', (err) => log.debug({ err }, 'redis connection error'));
  const queues = new Queues(producerRedis, config.queuePrefix);
  await upsertSchedules(queues, config);
  const stopKeepingSchedules = keepSchedules(queues, config, log, (listener) => producerRedis.on('ready', listener));
  // A settlement holds a whole project in memory and one transaction: one at a time per process.
  const running = startWorkers(consumerRedis, { db, queues, config, log }, processors, {
    concurrency: { settlements: 1 },
  });
  log.info({ queues: Object.keys(processors) }, 'workers started');
  return {
    queues,
    async close() {
      stopKeepingSchedules();
      await running.close();
      await queues.close();
      consumerRedis.disconnect();
      producerRedis.disconnect();
      await db.destroy();
    },
  };
}
