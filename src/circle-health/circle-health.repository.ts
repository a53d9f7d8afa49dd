import { sql } from 'kysely';
import type { Db } from '../infra/postgres.js';
import type { Executor } from '../infra/db.js';
import { LOOKBACK_DAYS } from './figures.js';

// The reads behind a circle's health report. Local days are counted in the circle's time zone by
// Postgres: `today` is the local date now, and a row's day is `today - local date of created_at`
// (0 = today). Everything is aggregated here; figures.ts turns the aggregates into figures.

export interface CircleClock {
  timezone: string;
  owner_id: string;
  /** The local date now, YYYY-MM-DD. */
  today: string;
}

export async function circleClock(db: Db, circleId: string): Promise<CircleClock | undefined> {
  const result = await sql<CircleClock>`
    SELECT timezone, owner_id, (now() AT TIME ZONE timezone)::date AS today FROM circles WHERE id = ${circleId}::uuid`.execute(
    db,
  );
  return result.rows[0];
}

/** The instant local day `today - daysAgo` begins, in the circle's zone (daylight saving included). */
const localDayStart = (clock: CircleClock, daysAgo: number) =>
  sql`((${clock.today}::date - ${daysAgo}::int)::timestamp AT TIME ZONE ${clock.timezone})`;
const daysAgo = (clock: CircleClock, column: string) =>
  sql`(${clock.today}::date - (${sql.ref(column)} AT TIME ZONE ${clock.timezone})::date)`;

export interface MemberActivityRow {
  user_id: string;
  handle: string;
  points: number;
  days_ago: number[];
}

/**
 * Every current member but the owner, with their net points over the last `windowDays` local days
 * and the distinct local days (as days ago) on which they claimed, submitted, checked in or
 * earned points over the last LOOKBACK_DAYS. Each source is a range of its by-circle-and-time index.
 */
export async function memberActivity(
  db: Executor,
  circleId: string,
  clock: CircleClock,
  windowDays: number,
): Promise<MemberActivityRow[]> {
  const since = localDayStart(clock, LOOKBACK_DAYS - 1);
  const result = await sql<MemberActivityRow>`
    WITH acts AS (
      SELECT user_id, created_at FROM claims WHERE circle_id = ${circleId}::uuid AND created_at >= ${since}
      UNION ALL
      SELECT user_id, created_at FROM submissions WHERE circle_id = ${circleId}::uuid AND created_at >= ${since}
      UNION ALL
      -- Check-ins earn contributions (source 'checkin'), so they count as activity here. A check-in
      -- that earns no points would need its own table read: CHECK-INS HOOK, add it to this union.
      SELECT user_id, created_at FROM contributions WHERE circle_id = ${circleId}::uuid AND created_at >= ${since}
    ), days AS (
      SELECT user_id, array_agg(DISTINCT ${daysAgo(clock, 'created_at')}) AS days_ago FROM acts GROUP BY user_id
    ), points AS (
      SELECT user_id, sum(points)::bigint AS points FROM contributions
      WHERE circle_id = ${circleId}::uuid AND created_at >= ${localDayStart(clock, windowDays - 1)}
      GROUP BY user_id
    )
    SELECT m.user_id, u.handle, coalesce(p.points, 0)::bigint AS points, coalesce(d.days_ago, '{}') AS days_ago
    FROM memberships m
    JOIN users u ON u.id = m.user_id
    LEFT JOIN points p ON p.user_id = m.user_id
    LEFT JOIN days d ON d.user_id = m.user_id
    WHERE m.circle_id = ${circleId}::uuid AND m.left_at IS NULL AND m.role <> 'owner'
    ORDER BY m.user_id`.execute(db);
  return result.rows;
}

export interface WorkFlowRow {
  expiring_claims: number;
  stale_submissions: number;
  median_seconds: number | null;
}

/**
 * Claims whose lease ends in the next 24 hours, submitted claims waiting for review for more than
 * 48 hours (a submitted claim's updated_at is its latest submission), and the median time from a
 * claim to its first submission, over first submissions in the window.
 */
export async function workFlow(db: Db, circleId: string, clock: CircleClock, windowDays: number): Promise<WorkFlowRow> {
  const result = await sql<WorkFlowRow>`
    SELECT
      (SELECT count(*)::int FROM claims
       WHERE circle_id = ${circleId}::uuid AND status = 'active' AND expires_at > now() AND expires_at <= now() + interval '24 hours') AS expiring_claims,
      (SELECT count(*)::int FROM claims
       WHERE circle_id = ${circleId}::uuid AND status = 'submitted' AND updated_at < now() - interval '48 hours') AS stale_submissions,
      (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.created_at - c.created_at)))::int
       FROM submissions s JOIN claims c ON c.id = s.claim_id
       WHERE s.circle_id = ${circleId}::uuid AND s.revision = 1 AND s.created_at >= ${localDayStart(clock, windowDays - 1)}) AS median_seconds`.execute(
    db,
  );
  return result.rows[0] as WorkFlowRow;
}

/**
 * Leaf tasks completed per local day over the last `days` days (task.completed events; a parent
 * finished by the roll-up of its children is not counted again).
 */
export async function completionsByDay(
  db: Db,
  circleId: string,
  clock: CircleClock,
  days: number,
): Promise<Map<number, number>> {
  const result = await sql<{ days_ago: number; completed: number }>`
    SELECT ${daysAgo(clock, 'e.created_at')} AS days_ago, count(*)::int AS completed
    FROM events e JOIN tasks t ON t.id = e.subject_id AND t.is_leaf
    WHERE e.circle_id = ${circleId}::uuid AND e.type = 'task.completed' AND NOT e.recipient_only
      AND e.created_at >= ${localDayStart(clock, days - 1)}
    GROUP BY 1`.execute(db);
  return new Map(result.rows.map((r) => [r.days_ago, r.completed]));
}

/**
 * Each live challenge's check-in rate for yesterday: of the members taking part (current members
 * who have checked in to it at least once, the owner left out as in every member figure), how many
 * have a check-in for yesterday's challenge day. Yesterday is the challenge's own: the day before
 * the one it is now in its zone, days starting `day_starts_at` minutes after local midnight (the
 * same rule as src/challenges/challenge-days.ts: the local date of now minus the day start). A
 * make-up for yesterday counts, as it fills that day's streak. Live: yesterday is one of its days
 * and it was not cancelled (closed is fine: the closing job runs as its last day ends, the day
 * the owner reads that day's rate).
 */
export async function checkinRatesYesterday(
  db: Db,
  circleId: string,
): Promise<{ challengeId: string; title: string; checkedIn: number; participants: number }[]> {
  const result = await sql<{ id: string; title: string; checked_in: number; participants: number }>`
    WITH live AS (
      SELECT c.id, c.title, c.created_at,
             ((now() - make_interval(mins => c.day_starts_at)) AT TIME ZONE c.timezone)::date - 1 AS yesterday,
             c.starts_on, c.ends_on
      FROM challenges c
      WHERE c.circle_id = ${circleId}::uuid AND c.status IN ('active', 'closed')
    )
    SELECT l.id, l.title,
           count(p.user_id)::int AS participants,
           count(p.user_id) FILTER (WHERE EXISTS (
             SELECT 1 FROM checkins k
             WHERE k.challenge_id = l.id AND k.user_id = p.user_id AND k.local_date = l.yesterday))::int AS checked_in
    FROM live l
    LEFT JOIN challenge_participants p ON p.challenge_id = l.id
      AND EXISTS (SELECT 1 FROM memberships m
                  WHERE m.circle_id = ${circleId}::uuid AND m.user_id = p.user_id
                    AND m.left_at IS NULL AND m.role <> 'owner')
    WHERE l.yesterday BETWEEN l.starts_on AND l.ends_on
    GROUP BY l.id, l.title, l.created_at
    ORDER BY l.created_at, l.id`.execute(db);
  return result.rows.map((r) => ({
    challengeId: r.id,
    title: r.title,
    checkedIn: r.checked_in,
    participants: r.participants,
  }));
}
