import { sql } from 'kysely';
import type { Db } from '../infra/postgres.js';
import { fromMicros } from '../infra/sql.js';
import { visibleIn } from '../infra/snapshots.js';

/** Which contributions a board counts, all of it frozen by the first page (see the service). */
export interface BoardScope {
  circleId: string;
  /** Contributions from this instant (microseconds since the epoch); null: all time. */
  sinceMicros: number | null;
  /** Members of the circle at this instant (microseconds since the epoch). */
  asOfMicros: number;
  /** Contributions visible in this snapshot (src/infra/snapshots.ts). */
  snapshot: string;
}

export interface BoardRow {
  user_id: string;
  handle: string;
  display_name: string;
  points: number;
  /** When the member first scored in the scope, microseconds since the epoch: breaks ties. */
  first_at: number;
  rank: number;
  is_me: boolean;
}

/**
 * One page of the circle's board, and the caller's own row when asked, in one statement: each
 * member's points over the scope (every source: tasks, check-ins, adjustments, recognition) summed
 * by Postgres along contributions_circle_time_idx, ranked (members with equal points share a
 * rank), ordered by points, then who scored first in the scope, then user id, and
 * cut after `after` = [points, firstAt, userId] of the last row served.
 */
export async function boardPage(
  db: Db,
  scope: BoardScope,
  options: { after: [number, number, string] | null; limit: number; meId: string | null },
): Promise<BoardRow[]> {
  const { after, limit, meId } = options;
  const result = await sql<BoardRow>`
    WITH totals AS (
      SELECT c.user_id, sum(c.points)::bigint AS points, (extract(epoch from min(c.created_at)) * 1000000)::bigint AS first_at
      FROM contributions c
      WHERE c.circle_id = ${scope.circleId}::uuid
        ${scope.sinceMicros === null ? sql`` : sql`AND c.created_at >= ${fromMicros(scope.sinceMicros)}`}
        AND ${visibleIn('c', scope.snapshot)}
      GROUP BY c.user_id
    ), board AS (
      SELECT t.user_id, t.points, t.first_at, rank() OVER (ORDER BY t.points DESC) AS rank
      FROM totals t
      JOIN memberships m ON m.circle_id = ${scope.circleId}::uuid AND m.user_id = t.user_id
      WHERE m.joined_at <= ${fromMicros(scope.asOfMicros)}
        AND (m.left_at IS NULL OR m.left_at > ${fromMicros(scope.asOfMicros)})
    ), page AS (
      SELECT * FROM board b
      ${after ? sql`WHERE b.points < ${after[0]} OR (b.points = ${after[0]} AND (b.first_at, b.user_id) > (${after[1]}, ${after[2]}::uuid))` : sql``}
      ORDER BY b.points DESC, b.first_at, b.user_id
      LIMIT ${limit}
    ), rows AS (
      SELECT page.*, false AS is_me FROM page
      ${meId ? sql`UNION ALL SELECT board.*, true AS is_me FROM board WHERE board.user_id = ${meId}::uuid` : sql``}
    )
    SELECT r.user_id, u.handle, u.display_name, r.points, r.first_at, r.rank, r.is_me
    FROM rows r JOIN users u ON u.id = r.user_id
    ORDER BY r.is_me, r.points DESC, r.first_at, r.user_id`.execute(db);
  return result.rows;
}

/** The database's clock, in microseconds since the epoch: the instant a board is taken at. */
export async function nowMicros(db: Db): Promise<number> {
  const row = await sql<{ now: number }>`SELECT (extract(epoch from now()) * 1000000)::bigint AS now`.execute(db);
  return row.rows[0]?.now as number;
}

/** A member's handle and display name. */
export async function findNames(db: Db, userId: string) {
  return db.selectFrom('users').select(['handle', 'display_name']).where('id', '=', userId).executeTakeFirstOrThrow();
}
