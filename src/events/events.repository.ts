import type { Transaction } from 'kysely';
import type { Database } from '../infra/database-schema.js';
import { applyCommitMark } from './commit-marks.js';

export interface NewEvent {
  circleId: string | null;
  type: string;
  subjectId?: string | null;
  actorId?: string | null;
  /** The member the event concerns, whose inbox shows it. */
  recipientId?: string | null;
  /** A notice for the recipient alone (a payout, a reminder): not in the circle's activity feed. */
  recipientOnly?: boolean;
  payload?: Record<string, unknown>;
}

/**
 * Appends to the outbox. Takes a Transaction on purpose: an event must commit or roll back with
 * the change it describes, never on its own. The request's commit mark, if it has one, is written
 * here too (see commit-marks.ts).
 */
export async function recordEvents(trx: Transaction<Database>, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  await applyCommitMark(trx);
  await trx
    .insertInto('events')
    .values(
      events.map((e) => ({
        circle_id: e.circleId,
        type: e.type,
        subject_id: e.subjectId ?? null,
        actor_id: e.actorId ?? null,
        recipient_id: e.recipientId ?? null,
        recipient_only: e.recipientOnly ?? false,
        payload: JSON.stringify(e.payload ?? {}),
      })),
    )
    .execute();
}

export const recordEvent = (trx: Transaction<Database>, event: NewEvent) => recordEvents(trx, [event]);
