import { UnrecoverableError } from 'bullmq';
import type { Logger } from '../context.js';
import type { Db } from '../infra/postgres.js';
import type { Queues } from '../jobs/queues.js';
import type { Processor } from '../jobs/worker-runtime.js';
import { recordEvent } from '../events/events.repository.js';
import { settleProject } from './settle-project.js';
import { failSettlement, unfinishedSettlements } from './settlements.repository.js';
import { isUuid } from '../infra/uuid.js';

/** The business key of a settlement's job. */
export const settlementJobKey = (settlementId: string) => `settlement:${settlementId}`;

/** The job id is the settlement id: enqueueing it twice (relay, sweep, request) yields one job. */
export async function enqueueSettlement(queues: Queues, settlementId: string): Promise<void> {
  await queues.add('settlements', { settlementId }, { jobId: settlementJobKey(settlementId) });
}

/** What a failed settlement tells its circle; nothing was paid, and the project can be settled again. */
export const FAILURE_REASON =
  'The settlement could not be completed after repeated attempts and paid nothing out. Request it again; if it fails again, contact support.';

/**
 * Settles the project. Safe under duplicate delivery and retries (see settleProject). When the
 * last attempt fails, the settlement is marked failed with the reason, so it never hangs pending.
 */
export const settlementProcessor: Processor<'settlements'> = async ({ settlementId }, ctx, job) => {
  // A payload no settlement can match fails for good at once instead of retrying for minutes.
  if (!isUuid(settlementId)) throw new UnrecoverableError(`invalid settlement id ${JSON.stringify(settlementId)}`);
  try {
    return { outcome: await settleProject(ctx.db, settlementId) };
  } catch (err) {
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (lastAttempt) {
      // The cause is the operators' (it may name hosts, tables or constraints): the log has it,
      // members read only that it failed and what they can do.
      ctx.log.error({ err, settlementId }, 'settlement failed on its last attempt');
      await markFailed(ctx.db, settlementId, FAILURE_REASON);
    }
    throw err;
  }
};

async function markFailed(db: Db, settlementId: string, reason: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const failed = await failSettlement(trx, settlementId, reason);
    if (failed)
      await recordEvent(trx, {
        circleId: failed.circle_id,
        type: 'settlement.failed',
        subjectId: settlementId,
        payload: { projectId: failed.project_id, reason },
      });
  });
}

/**
 * How often the sweep gives a settlement's finished job a new life. A job whose workers die every
 * time (it stalls, and BullMQ fails it without the processor's last attempt marking the
 * settlement) would otherwise be retried forever, taking a worker down each time; past this the
 * settlement is marked failed, and the project can be settled again by a new request.
 */
export const MAX_SWEEP_RETRIES = 3;

/**
 * The safety net for a Redis that lost its jobs (restart without persistence, flush): every
 * settlement still unfinished after a grace period is enqueued again under its own id. A job that
 * BullMQ finished without settling (failed for stalling too often: its workers died mid-job; the
 * processor's own last attempt marks the settlement failed instead) would make that enqueue a
 * no-op for as long as Redis keeps it, so it is retried in place.
 */
export async function requeueUnfinishedSettlements(
  ctx: { db: Db; queues: Queues; log: Logger },
  graceSeconds = 5,
): Promise<number> {
  const ids = await unfinishedSettlements(ctx.db, graceSeconds, 1000);
  for (const id of ids) {
    const done = await ctx.queues.requeue(
      'settlements',
      { settlementId: id },
      { jobId: settlementJobKey(id) },
      MAX_SWEEP_RETRIES,
    );
    if (done === 'retried') ctx.log.warn({ settlementId: id }, 'unfinished settlement had a finished job; retried it');
    if (done === 'exhausted') {
      ctx.log.error({ settlementId: id }, 'settlement job kept ending without settling; marked failed');
      await markFailed(ctx.db, id, FAILURE_REASON);
    }
  }
  return ids.length;
}
