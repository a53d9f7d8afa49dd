import type { Processor } from '../jobs/worker-runtime.js';
import type { Db } from '../infra/postgres.js';
import { msUntilReviewDue, overdueSubmissions } from './reviews.repository.js';
import { acceptIfOverdue } from './reviews.service.js';

const SWEEP_BATCH = 200;

/**
 * The longest a deadline job waits for its deadline. Its delay was reckoned by the submitting
 * host's clock, the deadline is judged by Postgres's: a job from a host running ahead fires early,
 * would find nothing due, and leave the work to the next sweep, up to a sweep interval late. A
 * few seconds covers clocks kept by NTP; a host further off is a fault the sweep still covers.
 */
const MAX_EARLY_WAIT_MS = 5_000;

/**
 * Accepts a submission whose review window closed without a review; a no-op otherwise. Run a
 * little before the deadline by the database's clock, it waits for it first.
 */
export const reviewDeadlineProcessor: Processor<'review-deadline'> = async ({ submissionId }, ctx) => {
  const early = await msUntilReviewDue(ctx.db, submissionId);
  if (early !== undefined && early > 0 && early <= MAX_EARLY_WAIT_MS)
    await new Promise((resolve) => setTimeout(resolve, Math.ceil(early)));
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
