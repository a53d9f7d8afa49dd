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
 * A transaction id Postgres accepts as a snapshot's bound: below 2^63 (xid8 is signed on the way
 * out) and valid, which Postgres judges on the low 32 bits alone (FullTransactionIdIsValid): 0,
 * 2^32, 2 * 2^32... are the invalid transaction id of some epoch.
 */
const validBound = (xid: bigint) => xid < 2n ** 63n && xid % 2n ** 32n !== 0n;

/**
 * Checks a snapshot that came back in a client's cursor before it reaches SQL, by Postgres's own
 * rules for pg_snapshot input (valid xmin and xmax, xmin <= xmax, in-progress ids in [xmin, xmax)
 * and increasing): a forged one would fail there as a 500 instead of a 400.
 */
export function parseSnapshot(text: string): string {
  const match = SNAPSHOT.exec(text);
  if (match) {
    const xmin = BigInt(match[1] as string);
    const xmax = BigInt(match[2] as string);
    const xip = match[3] ? match[3].split(',').map(BigInt) : [];
    const ordered = xip.every((x, i) => x >= xmin && x < xmax && (i === 0 || x > (xip[i - 1] as bigint)));
    if (validBound(xmin) && validBound(xmax) && xmin <= xmax && ordered) return text;
  }
  throw invalid('invalid_cursor', 'The cursor is not one this API issued.');
}

/** Rows of `table` (an alias with an xact_id column) visible in the snapshot; older rows have none. */
export const visibleIn = (table: string, snapshot: string): RawBuilder<boolean> =>
  sql<boolean>`(${sql.ref(`${table}.xact_id`)} IS NULL OR pg_visible_in_snapshot(${sql.ref(`${table}.xact_id`)}, ${snapshot}::pg_snapshot))`;
