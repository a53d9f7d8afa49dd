import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config.js';
import { createDb } from './infra/postgres.js';
import { Queues } from './jobs/queues.js';
import { openQueueConnection } from './jobs/queue-backend.js';
import { startWorkers, type JobObserver, type ProcessorMap } from './jobs/worker-runtime.js';
import { JobMetrics } from './jobs/job-metrics.js';
import { LeaseExpiryMetrics } from './claims/lease-metrics.js';
import { WebhookDeliveryMetrics } from './webhooks/webhook-metrics.js';
import type { MetricSource } from './metric-source.js';
import { keepSchedules, upsertSchedules } from './jobs/schedules.js';
import { maintenanceProcessor, type MaintenanceTasks } from './jobs/maintenance.job.js';
import { relayOutbox, type EventHandlers, type OutboxSubscriber } from './events/outbox-relay.js';
import { purgeExpiredKeys } from './idempotency/idempotency.repository.js';
import { purgeEndedSessions } from './accounts/accounts.repository.js';
import { claimExpiryProcessor, sweepOverdueClaims } from './claims/claim-expiry.job.js';
import { remindEndingLeases } from './claims/lease-reminder.job.js';
import { revokeClaimsOfDepartedMembers } from './claims/departed-members.js';
import { revokeClaimsOfEndedProjects, revokeStrandedClaims } from './claims/ended-projects.js';
import { reviewDeadlineProcessor, sweepOverdueSubmissions } from './reviews/review-deadline.job.js';
import { enqueueSettlement, requeueUnfinishedSettlements, settlementProcessor } from './settlements/settlement.job.js';
import { challengeClosingProcessor, sweepEndedChallenges } from './challenges/challenge-closing.job.js';
import { noticeMissedDays } from './challenges/missed-days.js';
import type { JobContext } from './jobs/worker-runtime.js';
import { requeueOverdueMessages, webhookDeliveryProcessor, webhookFanOut } from './webhooks/webhook-delivery.job.js';
import { circleRollupsProcessor, enqueueFold, sweepRollupsBehind } from './circle-health/rollups.job.js';

/** The work each outbox event type triggers when the relay moves it on. */
const eventHandlers: EventHandlers = {
  'settlement.requested': async (event, queues) => {
    if (event.subject_id) await enqueueSettlement(queues, event.subject_id);
  },
  // A new zone makes the circle's rollups count the wrong days: rebuild them (health reports read
  // the source rows meanwhile). Other changes just fold what is new, which is harmless.
  'circle.updated': async (event, queues) => {
    if (event.subject_id) await enqueueFold(queues, event.subject_id, `event-${event.id}`);
  },
};

/**
 * What every relayed batch of events feeds, in the relay's transaction: the webhooks' messages,
 * and the revocation of the claims members left behind in a circle (member.left).
 */
const outboxSubscribers = (ctx: JobContext): OutboxSubscriber[] => [
  webhookFanOut(ctx.config, ctx.log),
  revokeClaimsOfDepartedMembers,
  revokeClaimsOfEndedProjects,
];

/**
 * One pass of the outbox relay, as the maintenance schedule runs it. Its enqueues fail fast: they
 * run inside the relay's transaction, which must not outlive a queue store outage (the batch rolls
 * back and the next pass, a second later, relays it again).
 */
export const relayEvents = (ctx: JobContext) =>
  relayOutbox(ctx.db, ctx.queues.failingFast(), eventHandlers, outboxSubscribers(ctx));

/** The domains' housekeeping, run by the maintenance queue on the schedules of src/jobs/schedules.ts. */
const maintenanceTasks: MaintenanceTasks = {
  'purge-idempotency-keys': async (ctx) => ({ purged: await purgeExpiredKeys(ctx.db) }),
  'purge-ended-sessions': async (ctx) => ({ purged: await purgeEndedSessions(ctx.db) }),
  'expire-overdue-claims': async (ctx) => ({
    expired: await sweepOverdueClaims(ctx),
    revoked: await revokeStrandedClaims(ctx.db),
  }),
  'accept-overdue-submissions': async (ctx) => ({ accepted: await sweepOverdueSubmissions(ctx) }),
  'relay-outbox': async (ctx) => ({ relayed: await relayEvents(ctx) }),
  'requeue-unfinished-settlements': async (ctx) => ({ requeued: await requeueUnfinishedSettlements(ctx) }),
  'close-ended-challenges': async (ctx) => ({ closed: await sweepEndedChallenges(ctx) }),
  'notice-missed-challenge-days': async (ctx) => ({ noticed: await noticeMissedDays(ctx.db, Date.now()) }),
  'remind-ending-leases': async (ctx) => ({ reminded: await remindEndingLeases(ctx.db) }),
  'requeue-overdue-webhook-messages': async (ctx) => ({ requeued: await requeueOverdueMessages(ctx) }),
  'fold-circle-rollups': async (ctx) => ({ enqueued: await sweepRollupsBehind(ctx) }),
};

export const processors: ProcessorMap = {
  maintenance: maintenanceProcessor(maintenanceTasks),
  'claim-expiry': claimExpiryProcessor,
  'review-deadline': reviewDeadlineProcessor,
  settlements: settlementProcessor,
  'challenge-closing': challengeClosingProcessor,
  'webhook-delivery': webhookDeliveryProcessor,
  'circle-rollups': circleRollupsProcessor,
};

/**
 * What a worker process counts about its own job runs, for /metrics: created before the workers
 * start so the process's app can serve them (src/server.ts).
 */
export function workerMetrics(): { observers: JobObserver[]; sources: MetricSource[] } {
  const jobs = new JobMetrics();
  const leases = new LeaseExpiryMetrics();
  const webhooks = new WebhookDeliveryMetrics();
  return { observers: [jobs, leases, webhooks], sources: [jobs, leases, webhooks] };
}

/**
 * The worker role: consumes every queue and keeps the repeating schedules declared. Runs beside
 * the API in one process (ROLE=all) or on its own (ROLE=worker), any number of copies.
 */
export async function startWorkerRole(
  config: Config,
  log: FastifyBaseLogger,
  metrics: { observers: JobObserver[] } = workerMetrics(),
) {
  const db = createDb(config.databaseUrl, config.databasePoolSize, config.databaseConnectTimeoutMs);
  const onError = (err: Error) => log.debug({ err }, 'queue store connection error');
  const consumer = openQueueConnection(config, 'worker', onError);
  const producer = openQueueConnection(config, 'worker', onError);
  const queues = new Queues(producer, config.queuePrefix);
  await upsertSchedules(queues, config);
  const stopKeepingSchedules = keepSchedules(queues, config, log, (listener) => producer.onReconnect(listener));
  // A settlement holds a whole project in memory and one transaction: one at a time per process.
  const running = await startWorkers(consumer, { db, queues, config, log }, processors, {
    concurrency: { settlements: 1 },
    observers: metrics.observers,
  });
  log.info({ queues: Object.keys(processors) }, 'workers started');
  return {
    queues,
    async close() {
      stopKeepingSchedules();
      await running.close();
      await queues.close();
      await consumer.close();
      await producer.close();
      await db.destroy();
    },
  };
}
