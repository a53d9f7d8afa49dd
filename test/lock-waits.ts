import { sql } from 'kysely';
import type { Db, Executor } from '../src/infra/postgres.js';

// Races forced with locks the test holds: the test keeps a transaction open on purpose and waits
// until Postgres shows the other side queued behind it, so the interleaving is certain on any
// machine instead of hoped for after a sleep.

/** The server process id of the connection a transaction runs on. */
export async function backendPid(executor: Executor): Promise<number> {
  return (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(executor)).rows[0]!.pid;
}

/**
 * Waits until some other backend is blocked by `holderPid` (pg_blocking_pids), and returns what it
 * is running. Throws after `timeoutMs`: the race the test set up did not happen.
 */
export async function waitUntilBlockedBy(
  db: Db,
  holderPid: number,
  timeoutMs = 20_000,
): Promise<{ pid: number; query: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const waiting = await sql<{ pid: number; query: string }>`
      SELECT pid, query FROM pg_stat_activity WHERE ${holderPid}::int = ANY(pg_blocking_pids(pid))`.execute(db);
    if (waiting.rows[0]) return waiting.rows[0];
    if (Date.now() >= deadline) throw new Error(`no backend waited on ${holderPid} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** How many backends of the test's database wait on a lock, whoever holds it. */
export async function lockWaiterCount(db: Db): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(db);
  return rows[0]?.n ?? 0;
}

/**
 * Waits until `count` backends of the test's database wait on a lock: for races where what a
 * request queues behind depends on the code under test. Throws after `timeoutMs`.
 */
export async function waitUntilLockWaiters(db: Db, count: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await lockWaiterCount(db)) < count) {
    if (Date.now() >= deadline) throw new Error(`fewer than ${count} backends waited on a lock within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Settles when `pending` does, or as soon as Postgres shows a backend queued behind `holderPid`:
 * for proving a request does NOT wait on a lock the test holds (the old code's request would
 * wait for good, so a plain await could only end in a time-out). Throws after `timeoutMs`.
 */
export async function answeredOrBlocked<T>(
  db: Db,
  holderPid: number,
  pending: Promise<T>,
  timeoutMs = 20_000,
): Promise<{ answered: T } | { blocked: string }> {
  let outcome: { answered: T } | undefined;
  let failure: { error: unknown } | undefined;
  pending.then(
    (value) => {
      outcome = { answered: value };
    },
    (error: unknown) => {
      failure = { error };
    },
  );
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (failure) throw failure.error;
    if (outcome) return outcome;
    const waiting = await sql<{ query: string }>`
      SELECT query FROM pg_stat_activity WHERE ${holderPid}::int = ANY(pg_blocking_pids(pid))`.execute(db);
    if (waiting.rows[0]) return { blocked: waiting.rows[0].query.replace(/\s+/g, ' ').trim().slice(0, 160) };
    if (Date.now() >= deadline) throw new Error(`neither answered nor blocked on ${holderPid} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
