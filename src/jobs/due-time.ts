import { sql } from 'kysely';
import type { Executor } from '../infra/postgres.js';

// Delayed jobs fire by the clock of the worker that promotes them, their delay reckoned by the
// producer's; what they act on is judged by Postgres's clock (`expires_at <= now()`). A job from
// a host running ahead fires early, finds nothing due, and leaves the work to the next sweep, up
// to a sweep interval late. Such a job waits for its due time by the database's clock first.

/**
 * The longest a job waits for its due time. A few seconds covers clocks kept by NTP; a host
 * further off is a fault the sweeps still cover.
 */
export const MAX_EARLY_WAIT_MS = 5_000;

/** How many milliseconds until `instant` by the database's clock (negative once it has passed). */
export async function msUntilByDatabase(db: Executor, instant: Date): Promise<number> {
  const { rows } = await sql<{ ms: number }>`
    SELECT extract(epoch FROM ${instant}::timestamptz - now())::float8 * 1000 AS ms`.execute(db);
  return rows[0]?.ms ?? 0;
}

/** Waits out `msEarly`, the time still to go by the database's clock, if it is short enough. */
export async function waitUntilDue(msEarly: number | undefined): Promise<void> {
  if (msEarly !== undefined && msEarly > 0 && msEarly <= MAX_EARLY_WAIT_MS)
    await new Promise((resolve) => setTimeout(resolve, Math.ceil(msEarly)));
}
