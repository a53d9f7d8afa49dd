import type { AppContext } from '../context.js';
import { conflict, forbidden } from '../errors.js';
import { recordEvent } from '../events/events.repository.js';
import { findHandle, findHandles } from '../accounts/accounts.repository.js';
import { MANAGERS, authorize } from '../circles/access.js';
import { findProjectWithRole, lockProjectWithRole, updateProject } from '../projects/projects.repository.js';
import { assertProjectEditable } from '../projects/project-rules.js';
import { splitPool, splitResultHash, type Payout } from './split.js';
import { enqueueSettlement } from './settlement.job.js';
import * as repo from './settlements.repository.js';

export interface PolicyInput {
  minPoints?: number;
  capBasisPoints?: number;
}

const policyOf = (p: PolicyInput) => ({
  ...(p.minPoints !== undefined && { minPoints: BigInt(p.minPoints) }),
  ...(p.capBasisPoints !== undefined && { capBasisPoints: p.capBasisPoints }),
});

const payoutView = (p: Payout, handles: Map<string, string>) => ({
  userId: p.userId,
  handle: handles.get(p.userId) ?? '',
  points: Number(p.points),
  amount: Number(p.amount),
  share: { numerator: p.share.numerator.toString(), denominator: p.share.denominator.toString() },
  roundedUp: p.roundedUp,
  capped: p.capped,
});

/**
 * Requests settlement: freezes the cutoff, writes the settlement row and its outbox event in one
 * transaction, and marks the project settled (with its `project.settled` event) so no claim,
 * review or adjustment can change the points behind it. Workers do the split (202 Accepted).
 */
export async function requestSettlement(ctx: AppContext, userId: string, projectId: string, policy: PolicyInput) {
  const settlement = await ctx.db.transaction().execute(async (trx) => {
    const project = authorize(await lockProjectWithRole(trx, projectId, userId), 'project', MANAGERS);
    const p = project;
    if (await repo.findLiveSettlement(trx, projectId)) {
      throw conflict('already_settled', 'This project has already been settled (or its settlement is under way).');
    }
    // A project whose settlement failed stays frozen ('settled') and may be requested again, over
    // the same contributions; any other project must be open or closed.
    const freezing = p.status !== 'settled';
    if (freezing) {
      assertProjectEditable(p.status);
      if (p.status === 'draft')
        throw conflict('project_not_open', 'A draft project has nothing to settle; open it first.');
      // Settling ends the project's work: a submission still waiting for its review would be
      // revoked with it, unreviewed and unpaid. Work past its review deadline is owed an automatic
      // accept at score 100, which the deadline job or the sweep records within seconds; other
      // waiting work is the reviewers' to decide first. (Submissions share-lock the project, so
      // none can slip in between this check and the freeze.)
      const pending = await repo.pendingReviews(trx, projectId);
      if (pending.overdue > 0)
        throw conflict(
          'reviews_overdue',
          'Work in this project has passed its review deadline and is being accepted automatically; settle again in a minute.',
        );
      if (pending.waiting > 0)
        throw conflict(
          'reviews_pending',
          `${pending.waiting} ${pending.waiting === 1 ? 'submission is' : 'submissions are'} waiting for review; review ${pending.waiting === 1 ? 'it' : 'them'} before settling.`,
        );
    }
    const created = await repo.insertSettlement(trx, {
      circleId: p.circle_id,
      projectId,
      poolAmount: p.reward_amount,
      unit: p.reward_unit,
      cutoffId: await repo.latestContributionId(trx, projectId),
      minPoints: policy.minPoints === undefined ? null : BigInt(policy.minPoints),
      capBasisPoints: policy.capBasisPoints ?? null,
      requestedBy: userId,
    });
    await recordEvent(trx, {
      circleId: p.circle_id,
      type: 'settlement.requested',
      subjectId: created.id,
      actorId: userId,
      payload: { projectId },
    });
    if (freezing) {
      // The freeze is the project's status change, announced like every other one; a re-request
      // after a failed settlement finds the project frozen already and announces nothing.
      await updateProject(trx, projectId, { status: 'settled' });
      await recordEvent(trx, {
        circleId: p.circle_id,
        type: 'project.settled',
        subjectId: projectId,
        actorId: userId,
        payload: { from: p.status, to: 'settled', settlementId: created.id },
      });
    }
    return created;
  });
  // Fast path; the outbox relay delivers it anyway if Redis is unreachable right now.
  await enqueueSettlement(ctx.queues, settlement.id).catch((err) =>
    ctx.log.warn({ err, settlementId: settlement.id }, 'settlement left to the outbox relay'),
  );
  return { id: settlement.id, projectId, status: 'pending' as const };
}

/** What settling now would pay, computed exactly as the worker would, writing nothing. */
export async function previewSettlement(ctx: AppContext, userId: string, projectId: string, policy: PolicyInput) {
  const project = authorize(await findProjectWithRole(ctx.db, projectId, userId), 'project', MANAGERS);
  const p = project;
  const cutoff = await repo.latestContributionId(ctx.db, projectId);
  const pending = await repo.pendingReviews(ctx.db, projectId);
  const result = splitPool({
    pool: BigInt(p.reward_amount),
    contributors: await repo.contributorTotals(ctx.db, projectId, cutoff),
    policy: policyOf(policy),
  });
  const handles = await findHandles(
    ctx.db,
    result.payouts.map((x) => x.userId),
  );
  return {
    id: null,
    projectId,
    circleId: p.circle_id,
    status: 'preview' as const,
    poolAmount: p.reward_amount,
    unit: p.reward_unit,
    policy: { minPoints: policy.minPoints ?? null, capBasisPoints: policy.capBasisPoints ?? null },
    cutoffContributionId: String(cutoff),
    totalPoints: Number(result.totalPoints),
    distributed: Number(BigInt(p.reward_amount) - result.undistributed),
    undistributed: Number(result.undistributed),
    resultHash: splitResultHash(result),
    failureReason: null,
    createdAt: null,
    completedAt: null,
    payouts: result.payouts.map((x) => payoutView(x, handles)),
    reviewsPending: pending.waiting,
  };
}

async function loadForMember(ctx: AppContext, userId: string, settlementId: string) {
  return authorize(await repo.findSettlementWithRole(ctx.db, settlementId, userId), 'settlement');
}

type PayoutRow = Awaited<ReturnType<typeof repo.listPayouts>>[number];

const storedPayoutView = (p: Omit<PayoutRow, 'user_id' | 'handle'>) => ({
  points: p.points,
  amount: p.amount,
  share: { numerator: p.share_numerator, denominator: p.share_denominator },
  roundedUp: p.rounded_up,
  capped: p.capped,
});

export async function getSettlement(ctx: AppContext, userId: string, settlementId: string) {
  const s = await loadForMember(ctx, userId, settlementId);
  const payouts = s.status === 'completed' ? await repo.listPayouts(ctx.db, settlementId) : [];
  return {
    id: s.id,
    projectId: s.project_id,
    circleId: s.circle_id,
    status: s.status,
    poolAmount: s.pool_amount,
    unit: s.unit,
    policy: { minPoints: s.min_points === null ? null : Number(s.min_points), capBasisPoints: s.cap_basis_points },
    cutoffContributionId: String(s.cutoff_id),
    totalPoints: s.total_points === null ? null : Number(s.total_points),
    distributed: s.distributed,
    undistributed: s.undistributed,
    resultHash: s.result_hash,
    failureReason: s.failure_reason,
    createdAt: s.created_at,
    completedAt: s.completed_at,
    payouts: payouts.map((p) => ({ userId: p.user_id, handle: p.handle, ...storedPayoutView(p) })),
  };
}

/** Every row behind a member's points, the payout, and the arithmetic in words. */
export async function getStatement(ctx: AppContext, userId: string, settlementId: string, memberId: string) {
  const s = await loadForMember(ctx, userId, settlementId);
  if (memberId !== userId && !MANAGERS.includes(s.role))
    throw forbidden("Members see their own statement; owners and admins see everyone's.");
  const [rows, payout, handle] = await Promise.all([
    repo.memberContributions(ctx.db, s.project_id, memberId, s.cutoff_id),
    s.status === 'completed' ? repo.findPayout(ctx.db, settlementId, memberId) : undefined,
    findHandle(ctx.db, memberId),
  ]);
  const points = rows.reduce((sum, r) => sum + BigInt(r.points), 0n);
  const total = s.total_points ?? '0';
  const explanation = !payout
    ? s.status === 'completed'
      ? `${points} points did not qualify for a payout (a member needs more than 0 points${s.min_points ? ` and at least ${s.min_points}` : ''}).`
      : s.status === 'failed'
        ? 'The settlement failed and paid nothing out (see its failureReason); a new settlement of the project pays instead.'
        : `The settlement is ${s.status}; the payout appears once it completes.`
    : `${payout.points} of ${total} points entitle you to ${payout.share_numerator}/${payout.share_denominator} of the pool of ${s.pool_amount} ${s.unit}` +
      `${payout.capped ? ' (held at the cap)' : ''}: ${payout.amount} ${s.unit}, ${payout.rounded_up ? 'including one remainder unit (largest remainders first)' : 'the exact share rounded down'}.`;
  return {
    settlementId,
    userId: memberId,
    handle: handle ?? '',
    status: s.status,
    poolAmount: s.pool_amount,
    unit: s.unit,
    totalPoints: s.total_points === null ? null : Number(s.total_points),
    points: Number(points),
    payout: payout ? storedPayoutView(payout) : null,
    contributions: rows.map((r) => ({
      id: String(r.id),
      source: r.source,
      taskId: r.task_id,
      taskTitle: r.task_title,
      weight: r.weight,
      points: r.points,
      reason: r.reason,
      createdAt: r.created_at,
    })),
    explanation,
  };
}

/** The payouts of a settlement the caller may read (none until it completes), in payout order. */
export async function payoutsForExport(ctx: AppContext, userId: string, settlementId: string) {
  const s = await loadForMember(ctx, userId, settlementId);
  return s.status === 'completed' ? repo.listPayouts(ctx.db, settlementId) : [];
}
