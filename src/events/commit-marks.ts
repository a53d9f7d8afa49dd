import { AsyncLocalStorage } from 'node:async_hooks';
import type { Transaction } from 'kysely';
import type { Database } from '../infra/database-schema.js';

/**
 * Something a request must write in the same transaction as its change. Every state change writes
 * its outbox events in its own transaction (recordEvents), so that write is where a change
 * commits, and where a mark set for the request runs. The idempotency plugin uses one to record
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
