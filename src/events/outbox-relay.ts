import { sql, type Transaction } from 'kysely';
import type { Database } from '../infra/database-schema.js';
import type { Db } from '../infra/postgres.js';
import type { Queues } from '../jobs/queues.js';

const BATCH = 500;

/** An outbox event as the relay hands it on. */
export interface RelayedEvent {
  id: number;
  type: string;
  subject_id: string | null;
  circle_id: string | null;
}

/**
 * What an event of one type triggers, usually enqueueing a job under a business-key id (so a
 * re-relayed event enqueues nothing new). The worker supplies them, keyed by event type.
 */
export type EventHandlers = Readonly<Record<string, (event: RelayedEvent, queues: Queues) => Promise<void>>>;

/**
 * Work on a whole batch of events of any type, in the relay's transaction (rows written there
 * commit with the events being marked relayed, exactly once). It may return a step to run once
 * that transaction has committed, e.g. enqueueing jobs that read those rows.
 */
export type OutboxSubscriber = (
  trx: Transaction<Database>,
  events: RelayedEvent[],
) => Promise<((queues: Queues) => Promise<void>) | undefined>;

/**
 * Moves committed outbox events to where they trigger work. Events are marked relayed only in the
 * transaction that enqueued their jobs, after the enqueue succeeded: a crash in between re-relays
 * them, which is harmless because every job id is a business key. Events that trigger no job are
 * simply marked. Concurrent relays on several workers split the backlog (SKIP LOCKED). Give it a
 * producer that fails fast (Queues.failingFast): its enqueues run while its transaction holds the
 * batch's rows, so one that waited for an unreachable queue store would hold them as long.
 */
export async function relayOutbox(
  db: Db,
  queues: Queues,
  handlers: EventHandlers,
  subscribers: readonly OutboxSubscriber[] = [],
): Promise<number> {
  let relayed = 0;
  for (;;) {
    const afterCommit: ((queues: Queues) => Promise<void>)[] = [];
    const count = await db.transaction().execute(async (trx) => {
      const batch = await sql<RelayedEvent>`
        SELECT id, type, subject_id, circle_id FROM events WHERE relayed_at IS NULL ORDER BY id LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`.execute(
        trx,
      );
      for (const event of batch.rows) {
        const handle = Object.hasOwn(handlers, event.type) ? handlers[event.type] : undefined;
        if (handle) await handle(event, queues);
      }
      for (const subscriber of subscribers) {
        const then = batch.rows.length ? await subscriber(trx, batch.rows) : undefined;
        if (then) afterCommit.push(then);
      }
      if (batch.rows.length) {
        await sql`UPDATE events SET relayed_at = now() WHERE id = ANY(${batch.rows.map((e) => e.id)}::bigint[])`.execute(
          trx,
        );
      }
      return batch.rows.length;
    });
    for (const then of afterCommit) await then(queues);
    relayed += count;
    if (count < BATCH) return relayed;
  }
}
