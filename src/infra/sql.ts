import { sql, type RawBuilder } from 'kysely';

// Timestamps in cursors travel as integer microseconds since the epoch: JS Dates keep only
// milliseconds, and a truncated timestamp in a keyset cursor would repeat or skip rows.

/** The column as microseconds since the epoch (fits a JS number until the year 2255). */
export const micros = (column: string): RawBuilder<number> =>
  sql<number>`(extract(epoch from ${sql.ref(column)}) * 1000000)::bigint`;

/** A cursor's microseconds back to a timestamptz, exactly. */
export const fromMicros = (value: number): RawBuilder<Date> =>
  sql<Date>`(timestamptz 'epoch' + ${Math.trunc(value)}::bigint * interval '1 microsecond')`;
