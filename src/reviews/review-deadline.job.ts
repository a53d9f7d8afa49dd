import { UnrecoverableError } from 'bullmq';
import type { Processor } from '../jobs/worker-runtime.js';
import { isUuid } from '../infra/uuid.js';
import type { Db } from '../infra/postgres.js';
import { waitUntilDue } from '../jobs/due-time.js';
import { msUntilReviewDue, overdueSubmissions } from './reviews.repository.js';
import { acceptIfOverdue } from './reviews.service.js';

const SWEEP_BATCH = 200;

/**
 * Accepts a submission whose review window closed without a review; a no-op otherwise. Run a
 * little before the deadline by the database's clock, it waits for it first.
 */
export const reviewDeadlineProcessor: Processor<'review-deadline'> = async ({ submissionId }, ctx) => {
  // A payload no attempt can use fails once, not once per retry, as the other processors do.
  if (!isUuid(submissionId)) throw new UnrecoverableError(`invalid submission id ${JSON.stringify(submissionId)}`);
  await waitUntilDue(await msUntilReviewDue(ctx.db, submissionId));
  return { accepted: await acceptIfOverdue(ctx.db, submissionId) };
};

/** The safety net for lost deadline jobs: accepts every overdue submission still waiting. */
export async function sweepOverdueSubmissions(ctx: { db: Db }): Promise<number> {
  let accepted = 0;
  for (;;) {
    const due = await overdueSubmissions(ctx.db, SWEEP_BATCH);
    let progressed = 0;
    for (const id of due) if (await acceptIfOverdue(ctx.db, id)) progressed++;
    accepted += progressed;
    // Stop on a short batch, or when a batch made no progress (rows changed under us): next run.
    if (due.length < SWEEP_BATCH || progressed === 0) return accepted;
  }
}
