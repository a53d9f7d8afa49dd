import { sql, type RawBuilder, type SelectQueryBuilder } from 'kysely';

// Timestamps in cursors travel as integer microseconds since the epoch: JS Dates keep only
// milliseconds, and a truncated timestamp in a keyset cursor would repeat or skip rows.

/** The column as microseconds since the epoch (fits a JS number until the year 2255). */
export const micros = (column: string): RawBuilder<number> =>
  sql<number>`(extract(epoch from ${sql.ref(column)}) * 1000000)::bigint`;

/** A cursor's microseconds back to a timestamptz, exactly. */
export const fromMicros = (value: number): RawBuilder<Date> =>
  sql<Date>`(timestamptz 'epoch' + ${Math.trunc(value)}::bigint * interval '1 microsecond')`;

/**
 * Newest first, keyset-paginated on (created_at in µs, id) of the query's one table: the rows
 * after the cursor's position, one more than `limit` so the caller can tell a next page exists.
 */
export function newestFirstPage<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  limit: number,
  after: [number, string] | null,
): SelectQueryBuilder<DB, TB, O> {
  const q = after ? query.where(sql<boolean>`(created_at, id) < (${fromMicros(after[0])}, ${after[1]}::uuid)`) : query;
  return q
    .orderBy(sql`created_at`, 'desc')
    .orderBy(sql`id`, 'desc')
    .limit(limit + 1);
}
