import { UnrecoverableError } from 'bullmq';
import type { Logger } from '../context.js';
import type { Db } from '../infra/postgres.js';
import { storedJobId, type Queues } from '../jobs/queues.js';
import type { Processor } from '../jobs/worker-runtime.js';
import { recordEvent } from '../events/events.repository.js';
import { settleProject } from './settle-project.js';
import { failSettlement, unfinishedSettlements } from './settlements.repository.js';

/** The business key of a settlement's job. */
export const settlementJobKey = (settlementId: string) => `settlement:${settlementId}`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The job id is the settlement id: enqueueing it twice (relay, sweep, request) yields one job. */
export async function enqueueSettlement(queues: Queues, settlementId: string): Promise<void> {
  await queues.add('settlements', { settlementId }, { jobId: settlementJobKey(settlementId) });
}

/**
 * Settles the project. Safe under duplicate delivery and retries (see settleProject). When the
 * last attempt fails, the settlement is marked failed with the reason, so it never hangs pending.
 */
export const settlementProcessor: Processor<'settlements'> = async ({ settlementId }, ctx, job) => {
  // A payload no settlement can match fails for good at once instead of retrying for minutes.
  if (typeof settlementId !== 'string' || !UUID.test(settlementId))
    throw new UnrecoverableError(`invalid settlement id ${JSON.stringify(settlementId)}`);
  try {
    return { outcome: await settleProject(ctx.db, settlementId) };
  } catch (err) {
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (lastAttempt) await markFailed(ctx.db, settlementId, err instanceof Error ? err.message : String(err));
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
  const queue = ctx.queues.get('settlements');
  for (const id of ids) {
    const job = await queue.getJob(storedJobId(settlementJobKey(id)));
    const state = job ? await job.getState() : undefined;
    if (job && (state === 'failed' || state === 'completed')) {
      // Refused when another sweep retried it first (it is no longer in that state): fine.
      const retried = await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true }).then(
        () => true,
        () => false,
      );
      if (retried) ctx.log.warn({ settlementId: id, state }, 'unfinished settlement had a finished job; retried it');
    } else {
      await enqueueSettlement(ctx.queues, id);
    }
  }
  return ids.length;
}
