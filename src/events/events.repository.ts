import type { Transaction } from 'kysely';
import type { Database } from '../infra/database-schema.js';

export interface NewEvent {
  circleId: string | null;
  type: string;
  subjectId?: string | null;
  actorId?: string | null;
  payload?: Record<string, unknown>;
}

/**
 * Appends to the outbox. Takes a Transaction on purpose: an event must commit or roll back with
 * the change it describes, never on its own.
 */
export async function recordEvents(trx: Transaction<Database>, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  await trx
    .insertInto('events')
    .values(
      events.map((e) => ({
        circle_id: e.circleId,
        type: e.type,
        subject_id: e.subjectId ?? null,
        actor_id: e.actorId ?? null,
        payload: JSON.stringify(e.payload ?? {}),
      })),
    )
    .execute();
}

export const recordEvent = (trx: Transaction<Database>, event: NewEvent) => recordEvents(trx, [event]);
