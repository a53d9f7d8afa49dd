import { UnrecoverableError } from 'bullmq';
import type { Processor } from './worker-runtime.js';
import { purgeExpiredKeys } from '../idempotency/idempotency.repository.js';
import { sweepOverdueClaims } from '../claims/claim-expiry.job.js';
import { sweepOverdueSubmissions } from '../reviews/review-deadline.job.js';
import { relayOutbox } from '../events/outbox-relay.js';
import { requeueUnfinishedSettlements } from '../settlements/settlement.job.js';

/**
 * Periodic housekeeping and repair. The sweeps re-do what a lost delayed job would have done
 * (Redis flushed or restarted without persistence). Every task is idempotent, so overlapping runs
 * on several workers are harmless.
 */
export const maintenanceProcessor: Processor<'maintenance'> = async ({ task }, ctx) => {
  switch (task) {
    case 'purge-idempotency-keys':
      return { purged: await purgeExpiredKeys(ctx.db) };
    case 'expire-overdue-claims':
      return { expired: await sweepOverdueClaims(ctx) };
    case 'accept-overdue-submissions':
      return { accepted: await sweepOverdueSubmissions(ctx) };
    case 'relay-outbox':
      return { relayed: await relayOutbox(ctx.db, ctx.queues) };
    case 'requeue-unfinished-settlements':
      return { requeued: await requeueUnfinishedSettlements(ctx) };
    default:
      // A payload this version does not know (a newer producer, a typo): retrying cannot help.
      throw new UnrecoverableError(`unknown maintenance task ${JSON.stringify(task)}`);
  }
};
