import type { FastifyBaseLogger } from 'fastify';
import type { Queues } from '../jobs/queues.js';
import type { Processor } from '../jobs/worker-runtime.js';
import { expireOverdueClaims } from './claims.repository.js';

export const SWEEP_BATCH = 1000;

/**
 * Schedules the delayed job that expires a lease on time. The job id includes the deadline, so an
 * extension schedules a new job and the old one, firing early, finds the lease still running.
 * Redis being down must not fail the claim: the sweep expires it instead, a little later.
 */
export async function scheduleClaimExpiry(queues: Queues, log: FastifyBaseLogger, claim: { id: string; expires_at: Date }): Promise<void> {
  try {
    await queues.add('claim-expiry', { claimId: claim.id }, {
      jobId: `claim:${claim.id}:${claim.expires_at.getTime()}`,
      delay: Math.max(0, claim.expires_at.getTime() - Date.now()),
    });
  } catch (err) {
    log.warn({ err, claimId: claim.id }, 'could not schedule lease expiry; the sweep will expire it');
  }
}

/** Expires one claim if its lease has run out; a no-op for extended, submitted or ended claims. */
export const claimExpiryProcessor: Processor<'claim-expiry'> = async ({ claimId }, ctx) => {
  const expired = await expireOverdueClaims(ctx.db, { claimId, limit: 1 });
  return { expired: expired.length };
};

/** The safety net for lost delayed jobs: expires every overdue claim, in batches. */
export async function sweepOverdueClaims(ctx: { db: Parameters<typeof expireOverdueClaims>[0] }): Promise<number> {
  let total = 0;
  for (;;) {
    const batch = await expireOverdueClaims(ctx.db, { limit: SWEEP_BATCH });
    total += batch.length;
    if (batch.length < SWEEP_BATCH) return total;
  }
}
