import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../infra/database-schema.js';
import type { Db } from '../infra/postgres.js';

export const KEY_TTL_HOURS = 24;
// A request still marked in progress after this long died with its process; its key may be retried.
export const STALE_IN_PROGRESS_SECONDS = 300;

export type KeyState =
  | { kind: 'acquired'; holder: string }
  | { kind: 'mismatch' }
  | { kind: 'in_progress' }
  /** Its change committed, but the process died before it stored the response. */
  | { kind: 'response_lost' }
  | { kind: 'completed'; status: number; type: string; body: string };

/**
 * Claims (userId, key) for this request, atomically, under a new holder token. An expired key, or
 * one abandoned before its change committed by a request with the same hash (the client retrying
 * it; another request under its key is a mistake, 422, as long as the key lives), is taken over; otherwise the existing row tells the
 * caller whether to replay, refuse or wait. A key whose change committed is never taken over while
 * it lives: running its request again would apply the change twice.
 */
export async function acquireKey(db: Db, userId: string, key: string, requestHash: Buffer): Promise<KeyState> {
  const holder = randomUUID();
  const taken = await sql<{ user_id: string }>`
    INSERT INTO idempotency_keys (user_id, key, request_hash, holder)
    VALUES (${userId}, ${key}, ${requestHash}, ${holder})
    ON CONFLICT (user_id, key) DO UPDATE
      SET request_hash = EXCLUDED.request_hash, holder = EXCLUDED.holder, response_status = NULL,
          response_type = NULL, response_body = NULL, applied_at = NULL, created_at = now()
      WHERE idempotency_keys.created_at < now() - make_interval(hours => ${KEY_TTL_HOURS})
         OR (idempotency_keys.response_status IS NULL AND idempotency_keys.applied_at IS NULL
             AND idempotency_keys.request_hash = EXCLUDED.request_hash
             AND idempotency_keys.created_at < now() - make_interval(secs => ${STALE_IN_PROGRESS_SECONDS}))
    RETURNING user_id`.execute(db);
  if (taken.rows.length > 0) return { kind: 'acquired', holder };

  const row = await db
    .selectFrom('idempotency_keys')
    .select([
      'request_hash',
      'response_status',
      'response_type',
      'response_body',
      sql<boolean>`applied_at IS NOT NULL AND created_at < now() - make_interval(secs => ${STALE_IN_PROGRESS_SECONDS})`.as(
        'lost',
      ),
    ])
    .where('user_id', '=', userId)
    .where('key', '=', key)
    .executeTakeFirst();
  // Deleted between the two statements (its request failed): treat as still running; a retry succeeds.
  if (!row) return { kind: 'in_progress' };
  if (!row.request_hash.equals(requestHash)) return { kind: 'mismatch' };
  if (row.response_status === null) return row.lost ? { kind: 'response_lost' } : { kind: 'in_progress' };
  return {
    kind: 'completed',
    status: row.response_status,
    type: row.response_type ?? 'application/json',
    body: row.response_body ?? '',
  };
}

/**
 * Records, in the transaction of the request's change, that the change behind the key committed.
 * False when the key is no longer this request's: a retry took it over as abandoned, and the
 * caller must roll its change back.
 */
export async function markKeyApplied(
  trx: Transaction<Database>,
  userId: string,
  key: string,
  holder: string,
): Promise<boolean> {
  const marked = await trx
    .updateTable('idempotency_keys')
    .set({ applied_at: sql<Date>`coalesce(applied_at, now())` })
    .where('user_id', '=', userId)
    .where('key', '=', key)
    .where('holder', '=', holder)
    .executeTakeFirst();
  return marked.numUpdatedRows > 0n;
}

export async function completeKey(
  db: Db,
  userId: string,
  key: string,
  holder: string,
  response: { status: number; type: string; body: string },
): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set({ response_status: response.status, response_type: response.type, response_body: response.body })
    .where('user_id', '=', userId)
    .where('key', '=', key)
    .where('holder', '=', holder)
    .execute();
}

/**
 * Frees the key of a request that failed (5xx) so the client may retry it, unless its change
 * committed: then the key stays, and a retry learns the response was lost rather than applying the
 * change again.
 */
export async function releaseKey(db: Db, userId: string, key: string, holder: string): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('user_id', '=', userId)
    .where('key', '=', key)
    .where('holder', '=', holder)
    .where('response_status', 'is', null)
    .where('applied_at', 'is', null)
    .execute();
}

export async function purgeExpiredKeys(db: Db): Promise<number> {
  const result =
    await sql`DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => ${KEY_TTL_HOURS})`.execute(
      db,
    );
  return Number(result.numAffectedRows ?? 0);
}
