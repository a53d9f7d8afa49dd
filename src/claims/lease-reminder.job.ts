import { sql } from 'kysely';
import type { Db } from '../infra/postgres.js';

/** How long before its end a lease is announced to its member. */
export const REMINDER_NOTICE = '1 hour';
const BATCH = 1000;

// The lease period a reminder belongs to, as fixed text: it keys the unique index
// events_one_lease_reminder, so it must not depend on the session's time zone.
const leasePeriod = sql`to_char(c.lease_started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * Tells members whose lease ends within the hour (a `claim.lease_ending` notice in their inbox),
 * exactly once per lease period: a period starts when the claim is made or revised, and extending
 * the lease keeps it. Leases no longer than the notice itself get none (the member knew the hour
 * when they took it). Run by the maintenance queue on a schedule. The unique index
 * events_one_lease_reminder settles concurrent runs on several workers: the second insert of the
 * same reminder waits for the first and then adds nothing. Returns how many reminders it wrote.
 */
export async function remindEndingLeases(db: Db): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await sql<{ id: number }>`
      INSERT INTO events (circle_id, type, subject_id, recipient_id, recipient_only, payload)
      SELECT c.circle_id, 'claim.lease_ending', c.id, c.user_id, true,
             jsonb_build_object('taskId', c.task_id, 'projectId', c.project_id, 'expiresAt', c.expires_at,
                                'leaseStartedAt', ${leasePeriod})
      FROM claims c
      WHERE c.status = 'active'
        AND c.expires_at > now() AND c.expires_at <= now() + ${REMINDER_NOTICE}::interval
        AND c.lease_started_at < c.expires_at - ${REMINDER_NOTICE}::interval
        AND NOT EXISTS (
          SELECT 1 FROM events e
          WHERE e.type = 'claim.lease_ending' AND e.subject_id = c.id AND e.payload ->> 'leaseStartedAt' = ${leasePeriod})
      ORDER BY c.expires_at
      LIMIT ${BATCH}
      ON CONFLICT (subject_id, (payload ->> 'leaseStartedAt')) WHERE type = 'claim.lease_ending' DO NOTHING
      RETURNING id`.execute(db);
    total += result.rows.length;
    if (result.rows.length < BATCH) return total;
  }
}
