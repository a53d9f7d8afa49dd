import { sql } from 'kysely';
import type { Db } from '../infra/postgres.js';

export const KEY_TTL_HOURS = 24;
// A request still marked in progress after this long died with its process; its key may be retried.
export const STALE_IN_PROGRESS_SECONDS = 300;

export type KeyState =
  | { kind: 'acquired' }
  | { kind: 'mismatch' }
  | { kind: 'in_progress' }
  | { kind: 'completed'; status: number; type: string; body: string };

/**
 * Claims (userId, key) for this request, atomically. An expired or abandoned row is taken over;
 * otherwise the existing row tells the caller whether to replay, refuse or wait.
 */
export async function acquireKey(db: Db, userId: string, key: string, requestHash: Buffer): Promise<KeyState> {
  const taken = await sql<{ user_id: string }>`
    INSERT INTO idempotency_keys (user_id, key, request_hash)
    VALUES (${userId}, ${key}, ${requestHash})
    ON CONFLICT (user_id, key) DO UPDATE
      SET request_hash = EXCLUDED.request_hash, response_status = NULL, response_type = NULL,
          response_body = NULL, created_at = now()
      WHERE idempotency_keys.created_at < now() - make_interval(hours => ${KEY_TTL_HOURS})
         OR (idempotency_keys.response_status IS NULL
             AND idempotency_keys.created_at < now() - make_interval(secs => ${STALE_IN_PROGRESS_SECONDS}))
    RETURNING user_id`.execute(db);
  if (taken.rows.length > 0) return { kind: 'acquired' };

  const row = await db
    .selectFrom('idempotency_keys')
    .select(['request_hash', 'response_status', 'response_type', 'response_body'])
    .where('user_id', '=', userId)
    .where('key', '=', key)
    .executeTakeFirst();
  // Deleted between the two statements (its request failed): treat as still running; a retry succeeds.
  if (!row) return { kind: 'in_progress' };
  if (!row.request_hash.equals(requestHash)) return { kind: 'mismatch' };
  if (row.response_status === null) return { kind: 'in_progress' };
  return {
    kind: 'completed',
    status: row.response_status,
    type: row.response_type ?? 'application/json',
    body: row.response_body ?? '',
  };
}

export async function completeKey(
  db: Db,
  userId: string,
  key: string,
  status: number,
  type: string,
  body: string,
): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set({ response_status: status, response_type: type, response_body: body })
    .where('user_id', '=', userId)
    .where('key', '=', key)
    .execute();
}

export async function releaseKey(db: Db, userId: string, key: string): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('user_id', '=', userId)
    .where('key', '=', key)
    .where('response_status', 'is', null)
    .execute();
}

export async function purgeExpiredKeys(db: Db): Promise<number> {
  const result =
    await sql`DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => ${KEY_TTL_HOURS})`.execute(
      db,
    );
  return Number(result.numAffectedRows ?? 0);
}
