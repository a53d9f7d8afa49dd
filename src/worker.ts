import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config.js';
import { createDb } from './infra/postgres.js';
import { Queues } from './jobs/queues.js';
import { openQueueConnection } from './jobs/queue-backend.js';
import { startWorkers, type ProcessorMap } from './jobs/worker-runtime.js';
import { keepSchedules, upsertSchedules } from './jobs/schedules.js';
import { maintenanceProcessor, type MaintenanceTasks } from './jobs/maintenance.job.js';
import { relayOutbox, type EventHandlers } from './events/outbox-relay.js';
import { purgeExpiredKeys } from './idempotency/idempotency.repository.js';
import { claimExpiryProcessor, sweepOverdueClaims } from './claims/claim-expiry.job.js';
import { remindEndingLeases } from './claims/lease-reminder.job.js';
import { reviewDeadlineProcessor, sweepOverdueSubmissions } from './reviews/review-deadline.job.js';
import { enqueueSettlement, requeueUnfinishedSettlements, settlementProcessor } from './settlements/settlement.job.js';

/** The work each outbox event type triggers when the relay moves it on. */
const eventHandlers: EventHandlers = {
  'settlement.requested': async (event, queues) => {
    if (event.subject_id) await enqueueSettlement(queues, event.subject_id);
  },
};

/** The domains' housekeeping, run by the maintenance queue on the schedules of src/jobs/schedules.ts. */
const maintenanceTasks: MaintenanceTasks = {
  'purge-idempotency-keys': async (ctx) => ({ purged: await purgeExpiredKeys(ctx.db) }),
  'expire-overdue-claims': async (ctx) => ({ expired: await sweepOverdueClaims(ctx) }),
  'accept-overdue-submissions': async (ctx) => ({ accepted: await sweepOverdueSubmissions(ctx) }),
  'relay-outbox': async (ctx) => ({ relayed: await relayOutbox(ctx.db, ctx.queues, eventHandlers) }),
  'requeue-unfinished-settlements': async (ctx) => ({ requeued: await requeueUnfinishedSettlements(ctx) }),
  'remind-ending-leases': async (ctx) => ({ reminded: await remindEndingLeases(ctx.db) }),
};

export const processors: ProcessorMap = {
  maintenance: maintenanceProcessor(maintenanceTasks),
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
  const consumerRedis = openQueueConnection(config.redisUrl, 'worker');
  const producerRedis = openQueueConnection(config.redisUrl, 'worker');
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
