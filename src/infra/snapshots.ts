import { sql, type RawBuilder } from 'kysely';
import { invalid } from '../errors.js';
import type { Executor } from './db.js';

// Walks that must not repeat or skip a row while rows commit (feeds, inboxes, boards) pin the
// database snapshot of their first page: its text goes into the cursor, and every later page
// counts only the rows visible in it. Tables read this way carry `xact_id` (the writing
// transaction, xid8). Ids alone would not do: an identity value is taken at insert, so a
// transaction can commit a lower id after a higher one was served.

/** pg_snapshot text: xmin:xmax:xip1,xip2,... */
const SNAPSHOT = /^(\d{1,20}):(\d{1,20}):((?:\d{1,20})(?:,\d{1,20})*)?$/;

/** The snapshot of the statement that runs it, as text for a cursor. */
export async function currentSnapshot(db: Executor): Promise<string> {
  const row = await sql<{ snapshot: string }>`SELECT pg_current_snapshot()::text AS snapshot`.execute(db);
  return row.rows[0]?.snapshot as string;
}

/**
 * Checks a snapshot that came back in a client's cursor before it reaches SQL: a forged one would
 * fail there as a 500 instead of a 400.
 */
export function parseSnapshot(text: string): string {
  const match = SNAPSHOT.exec(text);
  if (match) {
    const xmin = BigInt(match[1] as string);
    const xmax = BigInt(match[2] as string);
    const xip = match[3] ? match[3].split(',').map(BigInt) : [];
    const ordered = xip.every((x, i) => x >= xmin && x < xmax && (i === 0 || x > (xip[i - 1] as bigint)));
    if (xmin <= xmax && xmax < 2n ** 63n && ordered) return text;
  }
  throw invalid('invalid_cursor', 'The cursor is not one this API issued.');
}

/** Rows of `table` (an alias with an xact_id column) visible in the snapshot; older rows have none. */
export const visibleIn = (table: string, snapshot: string): RawBuilder<boolean> =>
  sql<boolean>`(${sql.ref(`${table}.xact_id`)} IS NULL OR pg_visible_in_snapshot(${sql.ref(`${table}.xact_id`)}, ${snapshot}::pg_snapshot))`;
