import type { AppContext, Logger } from '../context.js';
import type { Transaction } from 'kysely';
import type { Database, ReviewDecision } from '../infra/database-schema.js';
import type { Db } from '../infra/postgres.js';
import type { Queues } from '../jobs/queues.js';
import { invalid, conflict, forbidden } from '../errors.js';
import { recordEvent, recordEvents } from '../events/events.repository.js';
import { MANAGERS, authorize, requireMember } from '../circles/access.js';
import { decodeCursor, pageOf } from '../infra/cursors.js';
import { assertProjectEditable } from '../projects/project-rules.js';
import { lockProjectShared } from '../projects/projects.repository.js';
import { lockMembershipShared } from '../circles/circles.repository.js';
import {
  acceptClaim,
  findClaimWithRole,
  lockClaim,
  lockClaimWithRole,
  rejectClaim,
  reviseClaim,
  submitClaim,
} from '../claims/claims.repository.js';
import { scheduleClaimExpiry } from '../claims/claim-expiry.job.js';
import { type ClaimLimits, claimLimits } from '../claims/claims.service.js';
import { insertContribution } from '../contributions/contributions.repository.js';
import { recordAcceptedWork } from '../tasks/task-completion.js';
import { findTaskWeight } from '../tasks/tasks.repository.js';
import * as repo from './reviews.repository.js';

export const DEFAULT_SCORE = 100;

const toSubmissionView = (s: repo.SubmissionRow) => ({
  id: s.id,
  claimId: s.claim_id,
  revision: s.revision,
  content: s.content,
  links: s.links,
  reviewDueAt: s.review_due_at,
  createdAt: s.created_at,
});

/**
 * Schedules automatic acceptance when the review window closes. Like lease expiry, a lost job is
 * covered by the sweep, so Redis being down does not fail the submission.
 */
async function scheduleReviewDeadline(queues: Queues, log: Logger, s: repo.SubmissionRow) {
  try {
    await queues.add(
      'review-deadline',
      { submissionId: s.id },
      { jobId: `submission:${s.id}`, delay: Math.max(0, s.review_due_at.getTime() - Date.now()) },
    );
  } catch (err) {
    log.warn({ err, submissionId: s.id }, 'could not schedule the review deadline; the sweep will handle it');
  }
}

export async function submitWork(
  ctx: AppContext,
  userId: string,
  claimId: string,
  input: { content: string; links?: string[] },
) {
  const submission = await ctx.db.transaction().execute(async (trx) => {
    const claim = authorize(await lockClaimWithRole(trx, claimId, userId), 'claim');
    if (claim.user_id !== userId) throw forbidden('Only the member who holds this claim can submit work for it.');
    // The project's status read under a share lock, not from the claim's join: a settle request
    // checks that no work waits for review and freezes the project under its row lock, so a
    // submission either lands before that check or finds the project settled.
    assertProjectEditable(await lockProjectShared(trx, claim.project_id));
    if (claim.status === 'expired' || (claim.status === 'active' && claim.lease_over)) {
      throw conflict('claim_expired', 'The lease on this claim has run out; claim the task again.');
    }
    if (claim.status !== 'active') throw conflict('claim_not_active', `The claim is ${claim.status}.`);
    const created = await repo.insertSubmission(trx, {
      circleId: claim.circle_id,
      claimId,
      userId,
      content: input.content,
      links: input.links ?? [],
      reviewWindowSeconds: claim.review_window_seconds,
    });
    await submitClaim(trx, claimId);
    await recordEvent(trx, {
      circleId: claim.circle_id,
      type: 'submission.created',
      subjectId: created.id,
      actorId: userId,
      payload: { claimId, taskId: claim.task_id, revision: created.revision },
    });
    return created;
  });
  await scheduleReviewDeadline(ctx.queues, ctx.log, submission);
  return toSubmissionView(submission);
}

type LockedClaim = NonNullable<Awaited<ReturnType<typeof lockClaim>>>;

/**
 * Applies a review decision to a claim already locked by the caller's transaction. Accepting writes
 * the contribution (weight x score) and completes the task when it has its required accepts.
 * Revising needs the claim limits (the claim takes a member slot again, on a lease no longer than
 * allowed), so only a reviewer's decision, not the automatic accept, can be a revise: `limits`
 * come with it.
 */
async function applyDecision(
  trx: Transaction<Database>,
  claim: LockedClaim,
  submissionId: string,
  decision: {
    reviewerId: string | null;
    decision: ReviewDecision;
    score: number | null;
    feedback: string;
    automatic: boolean;
  },
  limits?: ClaimLimits,
) {
  assertProjectEditable(await lockProjectShared(trx, claim.project_id));
  const review = await repo.insertReview(trx, {
    circleId: claim.circle_id,
    submissionId,
    claimId: claim.id,
    ...decision,
  });
  const events: Parameters<typeof recordEvents>[1] = [
    {
      circleId: claim.circle_id,
      type: 'review.created',
      subjectId: review.id,
      actorId: decision.reviewerId,
      recipientId: claim.user_id,
      payload: {
        claimId: claim.id,
        taskId: claim.task_id,
        decision: decision.decision,
        score: decision.score,
        automatic: decision.automatic,
      },
    },
  ];
  let points: number | null = null;
  let revised: { id: string; expires_at: Date } | null = null;
  if (decision.decision === 'accept') {
    await acceptClaim(trx, claim.id);
    points = (await findTaskWeight(trx, claim.task_id)) * (decision.score ?? DEFAULT_SCORE);
    const contribution = await insertContribution(trx, {
      circleId: claim.circle_id,
      projectId: claim.project_id,
      userId: claim.user_id,
      source: 'task',
      taskId: claim.task_id,
      claimId: claim.id,
      points,
      createdBy: decision.reviewerId,
    });
    events.push({
      circleId: claim.circle_id,
      type: 'contribution.recorded',
      subjectId: claim.user_id,
      actorId: decision.reviewerId,
      payload: { contributionId: contribution.id, points, source: 'task' },
    });
    await recordAcceptedWork(trx, claim.task_id, claim.circle_id);
  } else if (decision.decision === 'reject') {
    await rejectClaim(trx, claim.id);
  } else {
    if (limits === undefined) throw new Error('a revise needs the claim limits');
    revised = await reviseClaim(trx, claim.id, claim.lease_seconds, limits);
  }
  await recordEvents(trx, events);
  return { review, points, revised };
}

export async function reviewClaim(
  ctx: AppContext,
  userId: string,
  claimId: string,
  input: { decision: ReviewDecision; score?: number; feedback?: string },
) {
  const feedback = input.feedback?.trim() ?? '';
  if (input.decision !== 'accept' && !feedback) {
    throw invalid('feedback_required', `A ${input.decision} decision needs feedback telling the member why.`, [
      { path: 'body/feedback', message: 'required for reject and revise' },
    ]);
  }
  const outcome = await ctx.db.transaction().execute(async (trx) => {
    const claim = authorize(await lockClaimWithRole(trx, claimId, userId), 'claim', MANAGERS);
    if (claim.user_id === userId) throw forbidden('Nobody reviews their own work.');
    assertProjectEditable(claim.project_status);
    if (claim.status !== 'submitted')
      throw conflict('claim_not_submitted', `The claim is ${claim.status}; only submitted work can be reviewed.`);
    // Revised work goes back to its member on a new lease: one who has left the circle cannot
    // take it up, and the claim would hold its slot until the lease ran out.
    if (input.decision === 'revise' && !(await lockMembershipShared(trx, claim.circle_id, claim.user_id)))
      throw conflict(
        'claimant_departed',
        'The member who submitted this work has left the circle; accept or reject it.',
      );
    // A submitted claim always has work under review: its latest submission.
    const submission = await repo.latestSubmission(trx, claimId);
    if (!submission) throw new Error(`submitted claim ${claimId} has no submission`);
    const result = await applyDecision(
      trx,
      claim,
      submission.id,
      {
        reviewerId: userId,
        decision: input.decision,
        score: input.decision === 'accept' ? (input.score ?? DEFAULT_SCORE) : (input.score ?? null),
        feedback,
        automatic: false,
      },
      claimLimits(ctx.config),
    );
    return { ...result, submissionId: submission.id };
  });
  // Revised work runs on a fresh lease, which expires like any other.
  if (outcome.revised) await scheduleClaimExpiry(ctx.queues, ctx.log, outcome.revised);
  const r = outcome.review;
  return {
    id: r.id,
    claimId,
    submissionId: outcome.submissionId,
    decision: r.decision,
    score: r.score,
    feedback: r.feedback,
    reviewerId: r.reviewer_id,
    automatic: r.automatic,
    points: outcome.points,
    createdAt: r.created_at,
  };
}

/**
 * Accepts a submission at the default score once its review window has passed, if it is still
 * waiting. Safe to run twice or concurrently with a human review: the claim row lock and the
 * one-review-per-submission rule let exactly one decision through.
 */
export async function acceptIfOverdue(db: Db, submissionId: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const submission = await repo.findOverdueSubmission(trx, submissionId);
    if (!submission) return false;
    const claim = await lockClaim(trx, submission.claim_id);
    if (claim?.status !== 'submitted') return false;
    const projectStatus = await lockProjectShared(trx, claim.project_id);
    if (projectStatus === 'settled' || projectStatus === 'cancelled') return false;
    const latest = await repo.latestSubmission(trx, claim.id);
    if (latest?.id !== submissionId) return false;
    await applyDecision(trx, claim, submissionId, {
      reviewerId: null,
      decision: 'accept',
      score: DEFAULT_SCORE,
      feedback: 'Accepted automatically: the review window passed.',
      automatic: true,
    });
    return true;
  });
}

type SubmissionWithReview = Awaited<ReturnType<typeof repo.listSubmissions>>[number];

/** The review joined to a submission: its columns are all null when there is none, none null otherwise. */
function reviewOf(s: SubmissionWithReview) {
  const { review_id: id, decision, feedback, automatic, reviewed_at: createdAt } = s;
  if (id === null || decision === null || feedback === null || automatic === null || createdAt === null) return null;
  return { id, decision, score: s.score, feedback, reviewerId: s.reviewer_id, automatic, createdAt };
}

export async function listSubmissions(ctx: AppContext, userId: string, claimId: string) {
  const claim = authorize(await findClaimWithRole(ctx.db, claimId, userId), 'claim');
  if (claim.user_id !== userId && !MANAGERS.includes(claim.role))
    throw forbidden('Only the claimant and circle managers can see these submissions.');
  const rows = await repo.listSubmissions(ctx.db, claimId);
  return {
    items: rows.map((s) => ({
      id: s.id,
      claimId: s.claim_id,
      revision: s.revision,
      content: s.content,
      links: s.links,
      reviewDueAt: s.review_due_at,
      createdAt: s.created_at,
      review: reviewOf(s),
    })),
    nextCursor: null,
  };
}

/**
 * What waits for review in a circle (owners and admins): every submitted claim, oldest submission
 * first, so the work closest to its automatic acceptance comes first. Each item names the claim to
 * review and links to its submissions (content and history).
 */
export async function listReviewQueue(
  ctx: AppContext,
  userId: string,
  circleId: string,
  query: { limit?: number; cursor?: string },
) {
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  const limit = query.limit ?? 50;
  const after = decodeCursor(query.cursor, ['number', 'uuid']) as [number, string] | null;
  const rows = await repo.listReviewQueue(ctx.db, circleId, limit, after);
  const page = pageOf(rows, limit, (r) => [r.cursor_ts, r.claim_id]);
  return {
    items: page.items.map((r) => ({
      claimId: r.claim_id,
      taskId: r.task_id,
      taskTitle: r.task_title,
      projectId: r.project_id,
      userId: r.user_id,
      handle: r.handle,
      submissionId: r.submission_id,
      revision: r.revision,
      submittedAt: r.submitted_at,
      autoAcceptAt: r.review_due_at,
      submissionsUrl: `/v1/claims/${r.claim_id}/submissions`,
    })),
    nextCursor: page.nextCursor,
  };
}
