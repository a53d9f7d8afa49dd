import type { Processor } from '../jobs/worker-runtime.js';
import type { Db } from '../infra/postgres.js';
import { overdueSubmissions } from './reviews.repository.js';
import { acceptIfOverdue } from './reviews.service.js';

const SWEEP_BATCH = 200;

/** Accepts a submission whose review window closed without a review; a no-op otherwise. */
export const reviewDeadlineProcessor: Processor<'review-deadline'> = async ({ submissionId }, ctx) => {
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
