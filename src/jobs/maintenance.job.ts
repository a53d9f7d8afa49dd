import type { Processor } from './worker-runtime.js';
import { purgeExpiredKeys } from '../idempotency/idempotency.repository.js';
import { sweepOverdueClaims } from '../claims/claim-expiry.job.js';
import { sweepOverdueSubmissions } from '../reviews/review-deadline.job.js';

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
  }
};
