import { type Selectable, sql, type Transaction } from 'kysely';
import type { Database, SettlementsTable } from '../infra/database-schema.js';
import type { Db, Executor } from '../infra/postgres.js';
import type { Payout, SplitContributor } from './split.js';
import { callerMembershipOn } from '../circles/circles.repository.js';

/** A settlement row as Postgres returns it. */
export type SettlementRow = Selectable<SettlementsTable>;

export async function insertSettlement(
  trx: Transaction<Database>,
  s: {
    circleId: string;
    projectId: string;
    poolAmount: number;
    unit: string;
    cutoffId: number;
    minPoints: bigint | null;
    capBasisPoints: number | null;
    requestedBy: string;
  },
): Promise<SettlementRow> {
  return trx
    .insertInto('settlements')
    .values({
      circle_id: s.circleId,
      project_id: s.projectId,
      pool_amount: s.poolAmount,
      unit: s.unit,
      cutoff_id: s.cutoffId,
      min_points: s.minPoints === null ? null : s.minPoints.toString(),
      cap_basis_points: s.capBasisPoints,
      requested_by: s.requestedBy,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findLiveSettlement(trx: Transaction<Database>, projectId: string) {
  return trx
    .selectFrom('settlements')
    .select(['id', 'status'])
    .where('project_id', '=', projectId)
    .where('status', '<>', 'failed')
    .executeTakeFirst();
}

/** The newest contribution of the project: the cutoff a settlement freezes. */
export async function latestContributionId(trx: Executor, projectId: string): Promise<number> {
  const row = await trx
    .selectFrom('contributions')
    .select(sql<number>`coalesce(max(id), 0)::bigint`.as('id'))
    .where('project_id', '=', projectId)
    .executeTakeFirstOrThrow();
  return row.id;
}

/**
 * Submitted work in the project still waiting for its review: how many, and how many of those have
 * passed their review deadline (owed an automatic accept at score 100, which the deadline job or
 * the sweep records shortly). Judged by the database's clock at this moment (`clock_timestamp()`:
 * the settle request may have waited for the project lock since its transaction began).
 */
export async function pendingReviews(db: Executor, projectId: string): Promise<{ waiting: number; overdue: number }> {
  const { rows } = await sql<{ waiting: number; overdue: number }>`
    SELECT count(*)::int AS waiting,
      count(*) FILTER (WHERE s.review_due_at <= clock_timestamp())::int AS overdue
    FROM claims c
    JOIN submissions s ON s.claim_id = c.id
    WHERE c.project_id = ${projectId}::uuid AND c.status = 'submitted'
      AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.submission_id = s.id)`.execute(db);
  return rows[0] ?? { waiting: 0, overdue: 0 };
}

export async function lockSettlement(trx: Transaction<Database>, settlementId: string) {
  return trx.selectFrom('settlements').selectAll().where('id', '=', settlementId).forUpdate().executeTakeFirst();
}

export async function findSettlementWithRole(db: Executor, settlementId: string, userId: string) {
  return db
    .selectFrom('settlements')
    .leftJoin('memberships', (j) => j.on(callerMembershipOn('settlements.circle_id', userId)))
    .selectAll('settlements')
    .select('memberships.role')
    .where('settlements.id', '=', settlementId)
    .executeTakeFirst();
}

/**
 * Each contributor's total up to the cutoff, aggregated by Postgres: a million ledger rows become
 * one row per member before anything reaches Node. Totals travel as text (they may exceed 2^53).
 */
export async function contributorTotals(
  db: Executor,
  projectId: string,
  cutoffId: number,
): Promise<SplitContributor[]> {
  const result = await sql<{ user_id: string; points: string; first_at: string }>`
    SELECT user_id, sum(points)::text AS points, (extract(epoch from min(created_at)) * 1000000)::bigint::text AS first_at
    FROM contributions
    WHERE project_id = ${projectId}::uuid AND id <= ${cutoffId}
    GROUP BY user_id`.execute(db);
  return result.rows.map((r) => ({
    userId: r.user_id,
    points: BigInt(r.points),
    firstContributionAt: Number(r.first_at),
  }));
}

const PAYOUT_CHUNK = 10_000;

/** Writes payouts in large set-based chunks (arrays unnested server-side), keeping their order. */
export async function insertPayouts(
  trx: Transaction<Database>,
  settlement: { id: string; circle_id: string },
  payouts: readonly Payout[],
): Promise<void> {
  for (let start = 0; start < payouts.length; start += PAYOUT_CHUNK) {
    const chunk = payouts.slice(start, start + PAYOUT_CHUNK);
    await sql`
      INSERT INTO payouts (settlement_id, circle_id, user_id, rank, points, amount, share_numerator, share_denominator, rounded_up, capped)
      SELECT ${settlement.id}::uuid, ${settlement.circle_id}::uuid, u, r, p, a, n::numeric, d::numeric, ru, c
      FROM unnest(${chunk.map((p) => p.userId)}::uuid[], ${chunk.map((_, i) => start + i + 1)}::int[], ${chunk.map((p) => p.points.toString())}::bigint[],
                  ${chunk.map((p) => p.amount.toString())}::bigint[], ${chunk.map((p) => p.share.numerator.toString())}::text[],
                  ${chunk.map((p) => p.share.denominator.toString())}::text[], ${chunk.map((p) => p.roundedUp)}::boolean[], ${chunk.map((p) => p.capped)}::boolean[])
        AS x(u, r, p, a, n, d, ru, c)`.execute(trx);
  }
}

/**
 * One `payout.credited` notice per member paid (its subject the member, as for contributions), for
 * their inbox alone (recipient_only keeps a
 * settlement of many payees from flooding the circle's feed), written set-based from the payouts
 * in the settlement's transaction.
 */
export async function insertPayoutNotices(
  trx: Transaction<Database>,
  settlement: { id: string; circle_id: string; project_id: string; unit: string },
): Promise<void> {
  await sql`
    INSERT INTO events (circle_id, type, subject_id, recipient_id, recipient_only, payload)
    SELECT circle_id, 'payout.credited', user_id, user_id, true,
           jsonb_build_object('settlementId', settlement_id, 'projectId', ${settlement.project_id}::uuid,
                              'amount', amount, 'unit', ${settlement.unit}::text, 'points', points)
    FROM payouts WHERE settlement_id = ${settlement.id}::uuid AND amount > 0
    ORDER BY rank`.execute(trx);
}

export async function completeSettlement(
  trx: Transaction<Database>,
  settlementId: string,
  outcome: {
    totalPoints: bigint;
    distributed: bigint;
    undistributed: bigint;
    payeeCount: number;
    resultHash: string;
  },
): Promise<void> {
  await trx
    .updateTable('settlements')
    .set({
      status: 'completed',
      total_points: outcome.totalPoints.toString(),
      distributed: Number(outcome.distributed),
      undistributed: Number(outcome.undistributed),
      payee_count: outcome.payeeCount,
      result_hash: outcome.resultHash,
      completed_at: sql<Date>`now()`,
      attempts: sql<number>`attempts + 1`,
    })
    .where('id', '=', settlementId)
    .execute();
}

export async function failSettlement(db: Executor, settlementId: string, reason: string) {
  return db
    .updateTable('settlements')
    .set({ status: 'failed', failure_reason: reason.slice(0, 1000) })
    .where('id', '=', settlementId)
    .where('status', 'in', ['pending', 'running'])
    .returning(['circle_id', 'project_id'])
    .executeTakeFirst();
}

export async function unfinishedSettlements(db: Db, olderThanSeconds: number, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('settlements')
    .select('id')
    .where('status', 'in', ['pending', 'running'])
    .where('created_at', '<', sql<Date>`now() - make_interval(secs => ${olderThanSeconds})`)
    .orderBy('created_at')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

export async function listPayouts(db: Executor, settlementId: string) {
  return db
    .selectFrom('payouts')
    .innerJoin('users', 'users.id', 'payouts.user_id')
    .select([
      'payouts.user_id',
      'users.handle',
      'payouts.points',
      'payouts.amount',
      'payouts.share_numerator',
      'payouts.share_denominator',
      'payouts.rounded_up',
      'payouts.capped',
    ])
    .where('payouts.settlement_id', '=', settlementId)
    .orderBy('payouts.rank')
    .execute();
}

export async function findPayout(db: Executor, settlementId: string, userId: string) {
  return db
    .selectFrom('payouts')
    .select(['points', 'amount', 'share_numerator', 'share_denominator', 'rounded_up', 'capped', 'rank'])
    .where('settlement_id', '=', settlementId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
}

/** The ledger rows behind a member's points in a settlement, with task titles. */
export async function memberContributions(db: Executor, projectId: string, userId: string, cutoffId: number) {
  return db
    .selectFrom('contributions')
    .leftJoin('tasks', 'tasks.id', 'contributions.task_id')
    .select([
      'contributions.id',
      'contributions.source',
      'contributions.task_id',
      'tasks.title as task_title',
      'tasks.weight',
      'contributions.points',
      'contributions.reason',
      'contributions.created_at',
    ])
    .where('contributions.project_id', '=', projectId)
    .where('contributions.user_id', '=', userId)
    .where('contributions.id', '<=', cutoffId)
    .orderBy('contributions.id')
    .execute();
}
