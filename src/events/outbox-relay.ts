import { sql } from 'kysely';
import type { Db } from '../infra/postgres.js';
import type { Queues } from '../jobs/queues.js';
import { enqueueSettlement } from '../settlements/settlement.job.js';

const BATCH = 500;

/**
 * Moves committed outbox events to where they trigger work. Events are marked relayed only in the
 * transaction that enqueued their jobs, after the enqueue succeeded: a crash in between re-relays
 * them, which is harmless because every job id is a business key. Events that trigger no job are
 * simply marked. Concurrent relays on several workers split the backlog (SKIP LOCKED).
 */
export async function relayOutbox(db: Db, queues: Queues): Promise<number> {
  let relayed = 0;
  for (;;) {
    const count = await db.transaction().execute(async (trx) => {
      const batch = await sql<{ id: number; type: string; subject_id: string | null }>`
        SELECT id, type, subject_id FROM events WHERE relayed_at IS NULL ORDER BY id LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`.execute(
        trx,
      );
      for (const event of batch.rows) {
        if (event.type === 'settlement.requested' && event.subject_id)
          await enqueueSettlement(queues, event.subject_id);
      }
      if (batch.rows.length) {
        await sql`UPDATE events SET relayed_at = now() WHERE id = ANY(${batch.rows.map((e) => e.id)}::bigint[])`.execute(
          trx,
        );
      }
      return batch.rows.length;
    });
    relayed += count;
    if (count < BATCH) return relayed;
  }
}
