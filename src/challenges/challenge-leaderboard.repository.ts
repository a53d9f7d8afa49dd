import { sql } from 'kysely';
import type { Db } from '../infra/postgres.js';

export type LeaderboardSort = 'checkins' | 'current' | 'best';

export interface LeaderboardRow {
  user_id: string;
  handle: string;
  display_name: string;
  checkins: number;
  current: number;
  best: number;
  k1: number;
  k2: number;
  k3: number;
  rank: number;
}

/** Each sort's key, most significant first; the user id breaks the remaining ties. */
const KEYS: Record<LeaderboardSort, [string, string, string]> = {
  checkins: ['checkins', 'current', 'best'],
  current: ['current', 'best', 'checkins'],
  best: ['best', 'current', 'checkins'],
};

/**
 * One page of a challenge's leaderboard, in SQL: the circle's current members who checked in, as
 * the circle's own board counts (a member who left drops off, their check-ins kept, and is back
 * on rejoining). The current streak is projected from each member's stored state to `day` as
 * streakOn does (src/challenges/streaks.ts): the run is alive while the days missed since the last
 * check-in fit the freezes left. Ranks count the members strictly ahead (equal keys share a
 * rank), over the whole board, before the page is cut. `after` is the last row's key; `only`
 * returns that member's row alone, a zero row when they have not checked in.
 */
export async function leaderboardPage(
  db: Db,
  q: {
    challengeId: string;
    day: string;
    freezes: number;
    sort: LeaderboardSort;
    limit: number;
    after: [number, number, number, string] | null;
    only: string | null;
  },
): Promise<LeaderboardRow[]> {
  const [a, b, c] = KEYS[q.sort].map((k) => sql.ref(`s.${k}`));
  const caller = q.only
    ? sql`UNION ALL SELECT ${q.only}::uuid, 0, 0, 0 WHERE NOT EXISTS (
        SELECT 1 FROM challenge_participants WHERE challenge_id = ${q.challengeId}::uuid AND user_id = ${q.only}::uuid)`
    : sql``;
  const cursor = q.after
    ? sql`AND ((r.k1, r.k2, r.k3) < (${q.after[0]}::int, ${q.after[1]}::int, ${q.after[2]}::int)
          OR ((r.k1, r.k2, r.k3) = (${q.after[0]}::int, ${q.after[1]}::int, ${q.after[2]}::int) AND r.user_id > ${q.after[3]}::uuid))`
    : sql``;
  const only = q.only ? sql`AND r.user_id = ${q.only}::uuid` : sql``;
  const result = await sql<LeaderboardRow>`
    WITH s AS (
      SELECT p.user_id, p.checkins, p.best_streak AS best,
             CASE WHEN p.last_date IS NOT NULL AND ${q.day}::date - p.last_date - 1 <= ${q.freezes}::int - p.freezes_used
                  THEN p.run ELSE 0 END AS current
      FROM challenge_participants p
      JOIN memberships m ON m.circle_id = p.circle_id AND m.user_id = p.user_id AND m.left_at IS NULL
      WHERE p.challenge_id = ${q.challengeId}::uuid
      ${caller}
    ), r AS (
      SELECT s.*, ${a} AS k1, ${b} AS k2, ${c} AS k3,
             (rank() OVER (ORDER BY ${a} DESC, ${b} DESC, ${c} DESC))::int AS rank
      FROM s
    )
    SELECT r.*, u.handle, u.display_name
    FROM r JOIN users u ON u.id = r.user_id
    WHERE true ${cursor} ${only}
    ORDER BY r.k1 DESC, r.k2 DESC, r.k3 DESC, r.user_id
    LIMIT ${q.limit + 1}`.execute(db);
  return result.rows;
}
