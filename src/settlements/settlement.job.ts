import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../infra/postgres.js';
import type { Queues } from '../jobs/queues.js';
import type { Processor } from '../jobs/worker-runtime.js';
import { recordEvent } from '../events/events.repository.js';
import { settleProject } from './settle-project.js';
import { failSettlement, unfinishedSettlements } from './settlements.repository.js';

/** The job id is the settlement id: enqueueing it twice (relay, sweep, request) yields one job. */
export async function enqueueSettlement(queues: Queues, settlementId: string): Promise<void> {
  await queues.add('settlements', { settlementId }, { jobId: `settlement:${settlementId}` });
}

/**
 * Settles the project. Safe under duplicate delivery and retries (see settleProject). When the
 * last attempt fails, the settlement is marked failed with the reason, so it never hangs pending.
 */
export const settlementProcessor: Processor<'settlements'> = async ({ settlementId }, ctx, job) => {
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
    if (failed) await recordEvent(trx, { circleId: failed.circle_id, type: 'settlement.failed', subjectId: settlementId, payload: { projectId: failed.project_id, reason } });
  });
}

/**
 * The safety net for a Redis that lost its jobs (restart without persistence, flush): every
 * settlement still unfinished after a grace period is enqueued again under its own id.
 */
export async function requeueUnfinishedSettlements(ctx: { db: Db; queues: Queues; log: FastifyBaseLogger }, graceSeconds = 5): Promise<number> {
  const ids = await unfinishedSettlements(ctx.db, graceSeconds, 1000);
  for (const id of ids) await enqueueSettlement(ctx.queues, id);
  return ids.length;
}
