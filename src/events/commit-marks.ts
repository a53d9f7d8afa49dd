import { AsyncLocalStorage } from 'node:async_hooks';
import type { Transaction } from 'kysely';
import type { Database } from '../infra/database-schema.js';
import type { Db } from '../infra/postgres.js';

/**
 * Something a request must write in the same transaction as its change. Every state change writes
 * its outbox events in its own transaction (recordEvents), so that write is where a change
 * commits, and where a mark set for the request runs. Writes that insert their events in SQL of
 * their own call applyCommitMark themselves, or run through withCommitMark. The idempotency plugin uses one to record
 * that the change behind a key has committed, which no write after the commit could record safely:
 * the process may die in between.
 */
export type CommitMark = (trx: Transaction<Database>) => Promise<void>;

const requestMarks = new AsyncLocalStorage<CommitMark>();

/** Runs `fn`, and everything it starts, with `mark` applied to each transaction that records events. */
export function runWithCommitMark<T>(mark: CommitMark, fn: () => T): T {
  return requestMarks.run(mark, fn);
}

export async function applyCommitMark(trx: Transaction<Database>): Promise<void> {
  await requestMarks.getStore()?.(trx);
}

/**
 * For a write that records its events in the same single statement (the claim statements, which
 * skip a transaction for speed): when the request carries a commit mark, the statement runs in a
 * transaction with the mark, written if `changed` says the statement changed something. Without a
 * mark it runs as it is.
 */
export async function withCommitMark<T>(
  db: Db,
  write: (executor: Db) => Promise<T>,
  changed: (result: T) => boolean,
): Promise<T> {
  const mark = requestMarks.getStore();
  if (!mark) return write(db);
  return db.transaction().execute(async (trx) => {
    const result = await write(trx);
    if (changed(result)) await mark(trx);
    return result;
  });
}
