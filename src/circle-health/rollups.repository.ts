import { sql, type RawBuilder, type Transaction } from 'kysely';
import type { Database } from '../infra/database-schema.js';
import type { Db, Executor } from '../infra/db.js';
import { DAYS_PER_MASK, type RollupState } from './rollups.js';

// The SQL of the daily rollups: folding source rows into circle_member_days under the circle's
// watermark, and reading rollups and tail for a health report.
//
// Which rows a watermark W covers: those whose writing transaction (xact_id) is visible in W, and
// the rows older than xact_id (null), which count as visible in every snapshot. A fold takes a
// snapshot S after locking W and adds exactly the rows visible in S and not in W, then stores S:
// a transaction that was still running at S is not visible in it, so the next fold takes its rows
// whenever it commits, whatever its ids and times. Every row not visible in W has
// xact_id >= xmin(W), the range the (circle_id, xact_id) indexes serve.

/** The circle's activity rows (claims, submissions, contributions) matching `where`, with points. */
const activityRows = (circleId: string, where: RawBuilder<boolean>) => sql`
  SELECT user_id, created_at, 0::bigint AS points FROM claims WHERE circle_id = ${circleId}::uuid AND ${where}
  UNION ALL
  SELECT user_id, created_at, 0::bigint FROM submissions WHERE circle_id = ${circleId}::uuid AND ${where}
  UNION ALL
  -- Check-ins earn contributions (source 'checkin'), so they count here; see the health repository.
  SELECT user_id, created_at, points::bigint FROM contributions WHERE circle_id = ${circleId}::uuid AND ${where}`;

/** Rows not covered by the watermark: committed after it was taken (or running then). */
export const notCoveredBy = (watermark: string) =>
  sql<boolean>`(xact_id >= pg_snapshot_xmin(${watermark}::pg_snapshot) AND NOT pg_visible_in_snapshot(xact_id, ${watermark}::pg_snapshot))`;

/** Rows covered by the snapshot (rows older than xact_id are covered by every snapshot). */
const coveredBy = (snapshot: string) =>
  sql<boolean>`(xact_id IS NULL OR pg_visible_in_snapshot(xact_id, ${snapshot}::pg_snapshot))`;

interface WatermarkRow {
  folded_through: string | null;
  timezone: string | null;
}

const toState = (row: WatermarkRow): RollupState => ({ foldedThrough: row.folded_through, timezone: row.timezone });

/**
 * Locks the circle's watermark, creating it first if the circle has none; folds of one circle
 * wait for each other here. Undefined if the circle does not exist.
 */
export async function lockWatermark(trx: Transaction<Database>, circleId: string): Promise<RollupState | undefined> {
  // Two first folds both insert: the second waits for the first to commit and then inserts nothing.
  await sql`
    INSERT INTO circle_rollup_watermarks (circle_id)
    SELECT id FROM circles WHERE id = ${circleId}::uuid
    ON CONFLICT (circle_id) DO NOTHING`.execute(trx);
  const result = await sql<WatermarkRow>`
    SELECT folded_through::text AS folded_through, timezone FROM circle_rollup_watermarks
    WHERE circle_id = ${circleId}::uuid FOR UPDATE`.execute(trx);
  return result.rows[0] && toState(result.rows[0]);
}

export async function readWatermark(db: Executor, circleId: string): Promise<RollupState | undefined> {
  const result = await sql<WatermarkRow>`
    SELECT folded_through::text AS folded_through, timezone FROM circle_rollup_watermarks
    WHERE circle_id = ${circleId}::uuid`.execute(db);
  return result.rows[0] && toState(result.rows[0]);
}

export async function circleTimezone(db: Executor, circleId: string): Promise<string | undefined> {
  const result = await sql<{ timezone: string }>`SELECT timezone FROM circles WHERE id = ${circleId}::uuid`.execute(db);
  return result.rows[0]?.timezone;
}

/** The snapshot of the statement that runs it: taken after the watermark's lock, it is the fold's. */
export async function takeSnapshot(trx: Transaction<Database>): Promise<string> {
  const result = await sql<{ snapshot: string }>`SELECT pg_current_snapshot()::text AS snapshot`.execute(trx);
  return result.rows[0]?.snapshot as string;
}

export async function dropRollups(trx: Transaction<Database>, circleId: string): Promise<void> {
  await sql`DELETE FROM circle_member_days WHERE circle_id = ${circleId}::uuid`.execute(trx);
}

/**
 * Adds to the circle's rollups every activity row visible in `snapshot` and not covered by
 * `since` (every row visible in `snapshot` when `since` is null), its day counted in `timezone`.
 * Returns how many source rows it added.
 */
export async function foldRows(
  trx: Transaction<Database>,
  circleId: string,
  timezone: string,
  snapshot: string,
  since: string | null,
): Promise<number> {
  const where = since
    ? sql<boolean>`${notCoveredBy(since)} AND pg_visible_in_snapshot(xact_id, ${snapshot}::pg_snapshot)`
    : coveredBy(snapshot);
  const result = await sql<{ rows: number }>`
    WITH days AS (
      SELECT user_id, (created_at AT TIME ZONE ${timezone})::date AS local_date, sum(points)::bigint AS points, count(*)::int AS activities
      FROM (${activityRows(circleId, where)}) a
      GROUP BY 1, 2
    ), folded AS (
      INSERT INTO circle_member_days AS d (circle_id, user_id, local_date, points, activities)
      SELECT ${circleId}::uuid, user_id, local_date, points, activities FROM days
      ON CONFLICT (circle_id, user_id, local_date)
      DO UPDATE SET points = d.points + excluded.points, activities = d.activities + excluded.activities
    )
    SELECT coalesce(sum(activities), 0)::int AS rows FROM days`.execute(trx);
  return result.rows[0]?.rows ?? 0;
}

export async function advanceWatermark(
  trx: Transaction<Database>,
  circleId: string,
  snapshot: string,
  timezone: string,
): Promise<void> {
  await sql`
    UPDATE circle_rollup_watermarks SET folded_through = ${snapshot}::pg_snapshot, timezone = ${timezone}, folded_at = now()
    WHERE circle_id = ${circleId}::uuid`.execute(trx);
}

/**
 * Circles whose rollups are behind, after `afterId` in id order: never folded, built in another
 * zone than the circle's, or with committed activity rows their watermark does not cover.
 */
export async function circlesBehind(db: Db, afterId: string | null, limit: number): Promise<string[]> {
  const behind = (table: string) => sql`EXISTS (
    SELECT 1 FROM ${sql.table(table)} x WHERE x.circle_id = c.id
      AND x.xact_id >= pg_snapshot_xmin(w.folded_through) AND NOT pg_visible_in_snapshot(x.xact_id, w.folded_through))`;
  const result = await sql<{ id: string }>`
    SELECT c.id FROM circles c LEFT JOIN circle_rollup_watermarks w ON w.circle_id = c.id
    WHERE (${afterId}::uuid IS NULL OR c.id > ${afterId}::uuid)
      AND (w.folded_through IS NULL OR w.timezone <> c.timezone
           OR ${behind('contributions')} OR ${behind('claims')} OR ${behind('submissions')})
    ORDER BY c.id LIMIT ${limit}`.execute(db);
  return result.rows.map((r) => r.id);
}

export interface DayWindow {
  /** The local date now. */
  today: string;
  /** The report's window in days, today included. */
  windowDays: number;
  /** The first local day any activity figure looks at. */
  since: string;
  /** The first local day of the report's window, for points. */
  windowStart: string;
}

export interface RolledUpMemberRow {
  user_id: string;
  points: number;
  /** Active days as bit masks, DAYS_PER_MASK days each, from today back (see daysFromMasks). */
  days0: number;
  days1: number;
  days2: number;
}

/**
 * Every current member but the owner, with their points in the window and active days since
 * `since` as the rollups have them. Reads the circle's rollups and members in member order along
 * their keys (no sort), one row per member and active day. Days come as bit masks (rows dated
 * after today count for points only, as in every figure). No handles: see memberHandles.
 */
export async function rolledUpActivity(db: Executor, circleId: string, days: DayWindow): Promise<RolledUpMemberRow[]> {
  const result = await sql<RolledUpMemberRow>`
    WITH r AS (
      SELECT user_id,
             sum(points) FILTER (WHERE d < ${days.windowDays}) AS points,
             coalesce(bit_or(1 << d) FILTER (WHERE d BETWEEN 0 AND ${DAYS_PER_MASK - 1}), 0) AS days0,
             coalesce(bit_or(1 << (d - ${DAYS_PER_MASK})) FILTER (WHERE d BETWEEN ${DAYS_PER_MASK} AND ${2 * DAYS_PER_MASK - 1}), 0) AS days1,
             coalesce(bit_or(1 << (d - ${2 * DAYS_PER_MASK})) FILTER (WHERE d BETWEEN ${2 * DAYS_PER_MASK} AND ${3 * DAYS_PER_MASK - 1}), 0) AS days2
      FROM (
        SELECT user_id, points, ${days.today}::date - local_date AS d FROM circle_member_days
        WHERE circle_id = ${circleId}::uuid AND local_date >= ${days.since}::date
      ) x
      GROUP BY user_id
    )
    SELECT m.user_id, coalesce(r.points, 0)::bigint AS points,
           coalesce(r.days0, 0) AS days0, coalesce(r.days1, 0) AS days1, coalesce(r.days2, 0) AS days2
    FROM memberships m
    LEFT JOIN r ON r.user_id = m.user_id
    WHERE m.circle_id = ${circleId}::uuid AND m.left_at IS NULL AND m.role <> 'owner'
    ORDER BY m.user_id`.execute(db);
  return result.rows;
}

/**
 * The same figures from the rows the watermark does not cover yet (committed since the last
 * fold), by member: the tail a report adds to the rollups.
 */
export async function tailActivity(
  db: Executor,
  circleId: string,
  timezone: string,
  watermark: string,
  days: DayWindow,
): Promise<{ user_id: string; points: number; days_ago: number[] }[]> {
  const result = await sql<{ user_id: string; points: number; days_ago: number[] }>`
    SELECT user_id,
           coalesce(sum(points) FILTER (WHERE local_date >= ${days.windowStart}::date), 0)::bigint AS points,
           array_agg(DISTINCT ${days.today}::date - local_date) AS days_ago
    FROM (
      SELECT user_id, (created_at AT TIME ZONE ${timezone})::date AS local_date, points
      FROM (${activityRows(circleId, notCoveredBy(watermark))}) a
    ) t
    WHERE local_date >= ${days.since}::date
    GROUP BY user_id`.execute(db);
  return result.rows;
}

/** Handles of the given users. */
export async function memberHandles(db: Executor, userIds: readonly string[]): Promise<Map<string, string>> {
  if (userIds.length === 0) return new Map();
  const result = await sql<{ id: string; handle: string }>`
    SELECT id, handle FROM users WHERE id = ANY(${userIds}::uuid[])`.execute(db);
  return new Map(result.rows.map((r) => [r.id, r.handle]));
}

/** How many rows of a circle's rollups there are (for reports and tests). */
export async function rollupRowCount(db: Executor, circleId: string): Promise<number> {
  const result = await sql<{
    n: number;
  }>`SELECT count(*)::int AS n FROM circle_member_days WHERE circle_id = ${circleId}::uuid`.execute(db);
  return result.rows[0]?.n ?? 0;
}
