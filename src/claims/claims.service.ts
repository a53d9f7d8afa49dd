import type { AppContext } from '../context.js';
import type { Config } from '../config.js';
import type { ClaimStatus } from '../infra/database-schema.js';
import { invalid, conflict, forbidden, notFound } from '../errors.js';
import { decodeCursor, pageOf } from '../infra/cursors.js';
import { type NewEvent, recordEvent, recordEvents } from '../events/events.repository.js';
import { withCommitMark } from '../events/commit-marks.js';
import { MANAGERS, authorize } from '../circles/access.js';
import { normalizeSkills } from '../accounts/skills.js';
import { assertProjectEditable, assertProjectOpen } from '../projects/project-rules.js';
import { findProjectWithRole } from '../projects/projects.repository.js';
import { findTaskWithRole } from '../tasks/tasks.repository.js';
import { scheduleClaimExpiry } from './claim-expiry.job.js';
import { isUniqueViolation } from '../infra/pg-errors.js';
import * as repo from './claims.repository.js';

/** The settings that bound every claim, as the claim, revise and extend statements take them. */
export interface ClaimLimits {
  /** MAX_LIVE_CLAIMS_PER_MEMBER: the active claims a member holds in regular slots. */
  memberCap: number;
  /** MAX_LEASE_SECONDS: the longest a lease runs from its start (a claim, a revise), extensions included. */
  maxLeaseSeconds: number;
}

export const claimLimits = (config: Pick<Config, 'maxLiveClaimsPerMember' | 'maxLeaseSeconds'>): ClaimLimits => ({
  memberCap: config.maxLiveClaimsPerMember,
  maxLeaseSeconds: config.maxLeaseSeconds,
});

/**
 * The `claim.revoked` events for claims just revoked, one each, whoever revoked them (a manager,
 * a task's cancellation, the member's departure from the circle): in the circle's feed and in the
 * member's inbox (the recipient). `actorId` null means the service revoked them on its own.
 */
export function claimRevokedEvents(
  claims: readonly Pick<repo.ClaimRow, 'id' | 'circle_id' | 'user_id' | 'task_id'>[],
  revocation: { actorId: string | null; reason: string },
): NewEvent[] {
  return claims.map((c) => ({
    circleId: c.circle_id,
    type: 'claim.revoked',
    subjectId: c.id,
    actorId: revocation.actorId,
    recipientId: c.user_id,
    payload: { taskId: c.task_id, reason: revocation.reason },
  }));
}

export const toClaimView = (c: repo.ClaimRow) => ({
  id: c.id,
  taskId: c.task_id,
  projectId: c.project_id,
  circleId: c.circle_id,
  userId: c.user_id,
  status: c.status,
  expiresAt: c.expires_at,
  leaseStartedAt: c.lease_started_at,
  revokeReason: c.revoke_reason,
  createdAt: c.created_at,
  updatedAt: c.updated_at,
});

/**
 * Runs a claim statement, retrying when a concurrent claim by the same member took the member
 * slot it picked (the statement then sees the new claim and picks the next slot). For claims/next,
 * a concurrent claim by the same member on the same candidate task is retried too: the retry
 * skips that task and picks another.
 *
 * Every conflict means another active claim of this member committed meanwhile, so unless slots
 * are freed at the same moment, `cap` retries are enough for the statement to either win a slot
 * or find none left. A member's burst of parallel claims thus ends in 201s and claim_limit_reached.
 */
async function withSlotRetry(
  cap: number,
  run: () => Promise<repo.ClaimRow | undefined>,
  { retrySameTask = false }: { retrySameTask?: boolean } = {},
): Promise<repo.ClaimRow | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      const sameTask = isUniqueViolation(err, 'claims_one_per_member_and_task');
      if (sameTask && !retrySameTask) throw conflict('already_claimed', 'You already hold a live claim on this task.');
      if (!sameTask && !isUniqueViolation(err, 'claims_member_slot')) throw err;
      if (attempt >= cap)
        throw conflict('claim_conflict', 'Claims you made at the same moment kept taking precedence; try again.');
    }
  }
}

async function refusal(
  ctx: AppContext,
  userId: string,
  where: { taskId: string } | { projectId: string },
): Promise<never> {
  const cap = claimLimits(ctx.config).memberCap;
  const why = await repo.diagnoseClaim(ctx.db, userId, cap, where);
  if (!why.projectStatus) throw notFound('taskId' in where ? 'task' : 'project');
  assertProjectOpen(why.projectStatus);
  if (why.atCap)
    throw conflict('claim_limit_reached', `You already hold ${cap} active claims; submit or release one first.`);
  const t = why.task;
  if (!t) throw conflict('no_claimable_task', 'No task in this project can be claimed by you right now.');
  if (t.status !== 'open' || !t.is_leaf)
    throw conflict(
      'task_not_open',
      t.is_leaf ? `The task is ${t.status}.` : 'Only leaf tasks can be claimed; pick one of its sub-tasks.',
    );
  if (t.blocking_deps > 0) throw conflict('task_blocked', 'A task this one depends on is not done yet.');
  if (t.blocked_ancestors > 0)
    throw conflict('task_blocked', 'A task above this one depends on work that is not done yet.');
  if (t.mine) throw conflict('already_claimed', 'You already hold a live claim on this task.');
  if (t.contributed)
    throw conflict(
      'already_contributed',
      'Your work on this task was already accepted; its other slots are for other members.',
    );
  if (t.live_claims >= t.slots) throw conflict('task_full', 'Every slot of this task is taken.');
  // The task changed between the claim and this read (a slot freed up): tell the client to retry.
  throw conflict('task_full', 'The task was taken while claiming; try again.');
}

async function afterClaim(ctx: AppContext, claim: repo.ClaimRow) {
  await scheduleClaimExpiry(ctx.queues, ctx.log, claim);
  return toClaimView(claim);
}

export async function claimTask(ctx: AppContext, userId: string, taskId: string) {
  const limits = claimLimits(ctx.config);
  const claim = await withSlotRetry(limits.memberCap, () =>
    withCommitMark(ctx.db, (db) => repo.claimTask(db, taskId, userId, limits), Boolean),
  );
  if (!claim) return refusal(ctx, userId, { taskId });
  return afterClaim(ctx, claim);
}

/** Skills from the request, else the caller's profile skills (read by the claim statement); none means any task. */
export async function claimNextTask(ctx: AppContext, userId: string, projectId: string, skills?: string[]) {
  const normalized = skills ? normalizeSkills(skills) : null;
  const limits = claimLimits(ctx.config);
  const run = (skipLocked: boolean) =>
    withSlotRetry(
      limits.memberCap,
      () =>
        withCommitMark(
          ctx.db,
          (db) => repo.claimNextTask(db, projectId, userId, normalized, limits, { skipLocked }),
          Boolean,
        ),
      { retrySameTask: true },
    );
  // Skipping locked rows keeps concurrent callers apart, but comes back empty while a multi-slot
  // task still has room and every candidate is locked by someone claiming one of its slots. So
  // before answering no_claimable_task, look once more, this time waiting on the locks.
  const claim = (await run(true)) ?? (await run(false));
  if (!claim) return refusal(ctx, userId, { projectId });
  return afterClaim(ctx, claim);
}

type ClaimWithRole = NonNullable<Awaited<ReturnType<typeof repo.findClaimWithRole>>>;

/** Loads a claim for its claimant: outsiders get 404, other members 403. */
function authorizeClaimant(row: ClaimWithRole | undefined, userId: string) {
  const claim = authorize(row, 'claim');
  if (claim.user_id !== userId) throw forbidden('Only the member who holds this claim can do that.');
  return claim;
}

export async function getClaim(ctx: AppContext, userId: string, claimId: string) {
  const claim = authorize(await repo.findClaimWithRole(ctx.db, claimId, userId), 'claim');
  if (claim.user_id !== userId && !MANAGERS.includes(claim.role))
    throw forbidden('Only the claimant and circle managers can see this claim.');
  return toClaimView(claim);
}

/**
 * The heartbeat: the lease runs `seconds` (default: the project's lease length) from now, capped at
 * MAX_LEASE_SECONDS from its start. Asking for no more than the lease has left answers the claim
 * as it is: a lease is never shortened, and nothing changed that needs an event.
 */
export async function extendClaim(ctx: AppContext, userId: string, claimId: string, seconds?: number) {
  const { claim, extended } = await ctx.db.transaction().execute(async (trx) => {
    const current = authorizeClaimant(await repo.lockClaimWithRole(trx, claimId, userId), userId);
    // A settled or cancelled project takes no more work: a longer lease would lead nowhere.
    assertProjectEditable(current.project_status);
    if (current.status !== 'active' || current.lease_over)
      throw conflict('claim_not_active', `The claim is ${current.status === 'active' ? 'expired' : current.status}.`);
    const wanted = seconds ?? current.lease_seconds;
    if (await repo.leaseOutlasts(trx, claimId, wanted)) return { claim: current, extended: false };
    const moved = await repo.extendLease(trx, claimId, wanted, claimLimits(ctx.config).maxLeaseSeconds);
    if (!moved) throw conflict('lease_limit_reached', 'The lease is already at its longest allowed length.');
    await recordEvent(trx, {
      circleId: current.circle_id,
      type: 'claim.extended',
      subjectId: claimId,
      actorId: userId,
      payload: { expiresAt: moved.expires_at },
    });
    return { claim: moved, extended: true };
  });
  if (extended) await scheduleClaimExpiry(ctx.queues, ctx.log, claim);
  return toClaimView(claim);
}

export async function releaseClaim(ctx: AppContext, userId: string, claimId: string) {
  return ctx.db.transaction().execute(async (trx) => {
    const current = authorizeClaimant(await repo.lockClaimWithRole(trx, claimId, userId), userId);
    const ended = await repo.endClaim(trx, claimId, ['active'], 'released');
    if (!ended) throw conflict('claim_not_active', `The claim is ${current.status}.`);
    await recordEvent(trx, {
      circleId: current.circle_id,
      type: 'claim.released',
      subjectId: claimId,
      actorId: userId,
      payload: { taskId: current.task_id },
    });
    return toClaimView(ended);
  });
}

/** An owner or admin frees a slot held by someone else (an abandoned claim), with a reason. */
export async function revokeClaim(ctx: AppContext, userId: string, claimId: string, rawReason: string) {
  // The reason is shown to the member: whitespace is no reason (same rule as adjustments).
  const reason = rawReason.trim();
  if (!reason)
    throw invalid('reason_required', 'A revocation needs a reason.', [
      { path: 'body/reason', message: 'must not be blank' },
    ]);
  return ctx.db.transaction().execute(async (trx) => {
    const current = authorize(await repo.lockClaimWithRole(trx, claimId, userId), 'claim', MANAGERS);
    assertProjectEditable(current.project_status);
    const ended = await repo.endClaim(trx, claimId, ['active', 'submitted'], 'revoked', reason);
    if (!ended) throw conflict('claim_not_active', `The claim is ${current.status}.`);
    await recordEvents(trx, claimRevokedEvents([ended], { actorId: userId, reason }));
    return toClaimView(ended);
  });
}

type PageRequest = { limit?: number; cursor?: string };

const claimPage = (rows: (repo.ClaimRow & { cursor_ts: number })[], limit: number) => {
  const page = pageOf(rows, limit, (c) => [c.cursor_ts, c.id]);
  return { items: page.items.map(toClaimView), nextCursor: page.nextCursor };
};

const afterCursor = (cursor?: string) => decodeCursor(cursor, ['number', 'uuid']) as [number, string] | null;

export async function listMyClaims(ctx: AppContext, userId: string, query: { status?: ClaimStatus } & PageRequest) {
  const limit = query.limit ?? 50;
  const rows = await repo.listClaimsOfUser(ctx.db, userId, query.status, limit, afterCursor(query.cursor));
  return claimPage(rows, limit);
}

/**
 * A project's claims, newest first. Owners and admins see everyone's; a member sees only their own,
 * and asking for another member's (`userId` of someone else) is a 403 rather than a silently empty
 * page, so a client cannot mistake "not allowed" for "nothing there".
 */
export async function listProjectClaims(
  ctx: AppContext,
  userId: string,
  projectId: string,
  query: { status?: ClaimStatus; taskId?: string; userId?: string } & PageRequest,
) {
  const project = authorize(await findProjectWithRole(ctx.db, projectId, userId), 'project');
  const manager = MANAGERS.includes(project.role);
  if (!manager && query.userId !== undefined && query.userId !== userId)
    throw forbidden("Members see only their own claims; owners and admins see everyone's.");
  const limit = query.limit ?? 50;
  const filters = { status: query.status, taskId: query.taskId, userId: manager ? query.userId : userId };
  const rows = await repo.listClaims(ctx.db, { projectId }, filters, limit, afterCursor(query.cursor));
  return claimPage(rows, limit);
}

/** Every claim on a task, newest first (owners and admins): who holds it now and who did it before. */
export async function listTaskClaims(
  ctx: AppContext,
  userId: string,
  taskId: string,
  query: { status?: ClaimStatus } & PageRequest,
) {
  authorize(await findTaskWithRole(ctx.db, taskId, userId), 'task', MANAGERS);
  const limit = query.limit ?? 50;
  const rows = await repo.listClaims(ctx.db, { taskId }, { status: query.status }, limit, afterCursor(query.cursor));
  return claimPage(rows, limit);
}
