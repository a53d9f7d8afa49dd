import type { Logger } from '../context.js';
import type { Queues } from '../jobs/queues.js';
import type { Processor } from '../jobs/worker-runtime.js';
import { msUntilByDatabase, waitUntilDue } from '../jobs/due-time.js';
import { expireOverdueClaims } from './claims.repository.js';

export const SWEEP_BATCH = 1000;

/** Lease deadlines are scheduled per second: every lease ending within one second shares a job. */
export const EXPIRY_SLOT_MS = 1000;

/** The end of the second a lease deadline falls in: when its expiry job runs. */
export const expiryDueAt = (expiresAt: Date) => Math.ceil(expiresAt.getTime() / EXPIRY_SLOT_MS) * EXPIRY_SLOT_MS;

/** The BullMQ job id of the expiry job for one second's deadlines. */
export const expiryJobId = (dueAt: number) => `claim-expiry:${dueAt}`;

// Seconds this process has already scheduled, per queue set (one per app), with the enqueue in
// flight. A rush of claims then costs Redis one job per second, not one per claim, and the worker
// wakes once per second instead of once per claim.
const scheduled = new WeakMap<Queues, Map<number, Promise<void>>>();
const MAX_REMEMBERED = 100_000;

function remembered(queues: Queues): Map<number, Promise<void>> {
  let seconds = scheduled.get(queues);
  if (!seconds) {
    seconds = new Map();
    scheduled.set(queues, seconds);
  }
  if (seconds.size >= MAX_REMEMBERED) {
    const now = Date.now();
    for (const dueAt of seconds.keys()) if (dueAt < now) seconds.delete(dueAt);
    // Forgetting only costs a duplicate enqueue, which BullMQ ignores (same job id).
    if (seconds.size >= MAX_REMEMBERED) seconds.clear();
  }
  return seconds;
}

/**
 * Makes sure a delayed job runs when the lease's second ends (at most a second after the deadline;
 * submitting is refused from the deadline itself). Extending a lease schedules its new second; the
 * old job finds the lease still running and leaves it. Redis being down must not fail the claim:
 * the sweep expires it instead, a little later.
 */
export async function scheduleClaimExpiry(
  queues: Queues,
  log: Logger,
  claim: { id: string; expires_at: Date },
): Promise<void> {
  const dueAt = expiryDueAt(claim.expires_at);
  const seconds = remembered(queues);
  let enqueued = seconds.get(dueAt);
  if (!enqueued) {
    enqueued = queues.add(
      'claim-expiry',
      { dueAt },
      { jobId: expiryJobId(dueAt), delay: Math.max(0, dueAt - Date.now()) },
    );
    seconds.set(dueAt, enqueued);
    // A failed enqueue is forgotten, so the next claim in that second tries again.
    enqueued.catch(() => seconds.delete(dueAt));
  }
  try {
    await enqueued;
  } catch (err) {
    log.warn({ err, claimId: claim.id, dueAt }, 'could not schedule lease expiry; the sweep will expire it');
  }
}

/**
 * Expires every lease that has run out: those of the job's second and any a lost job left behind.
 * A no-op for leases extended, submitted or ended meanwhile; safe to run twice. (Jobs enqueued by
 * earlier versions carry `{ claimId }` instead of `dueAt`; they do the same.)
 */
export const claimExpiryProcessor: Processor<'claim-expiry'> = async (due, ctx) => {
  // Run early by a worker whose clock is ahead of the database's, it waits for its second to end.
  if (Number.isFinite(due.dueAt)) await waitUntilDue(await msUntilByDatabase(ctx.db, new Date(due.dueAt)));
  return { expired: await sweepOverdueClaims(ctx) };
};

/** Expires every overdue claim, in batches: the expiry jobs and the periodic safety-net sweep. */
export async function sweepOverdueClaims(ctx: { db: Parameters<typeof expireOverdueClaims>[0] }): Promise<number> {
  let total = 0;
  for (;;) {
    const batch = await expireOverdueClaims(ctx.db, SWEEP_BATCH);
    total += batch.length;
    if (batch.length < SWEEP_BATCH) return total;
  }
}
