import { sql, type Transaction } from 'kysely';
import type { Database } from '../infra/database-schema.js';
import type { Db } from '../infra/postgres.js';
import type { Executor } from '../infra/db.js';

const USER_COLUMNS = ['id', 'handle', 'display_name', 'skills', 'created_at'] as const;

export async function insertUser(db: Db, user: { handle: string; passwordHash: string; displayName: string }) {
  return db
    .insertInto('users')
    .values({ handle: user.handle, password_hash: user.passwordHash, display_name: user.displayName })
    .returning(USER_COLUMNS)
    .executeTakeFirstOrThrow();
}

export async function findUserByHandle(db: Db, handle: string) {
  return db
    .selectFrom('users')
    .select([...USER_COLUMNS, 'password_hash'])
    .where(sql<string>`lower(handle)`, '=', handle.toLowerCase())
    .executeTakeFirst();
}

export async function findUserById(db: Executor, id: string) {
  return db.selectFrom('users').select(USER_COLUMNS).where('id', '=', id).executeTakeFirst();
}

/** The handles of the given users, by id (settlement previews and statements name members by them). */
export async function findHandles(db: Db, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db.selectFrom('users').select(['id', 'handle']).where('id', 'in', ids).execute();
  return new Map(rows.map((r) => [r.id, r.handle]));
}

export async function findHandle(db: Db, id: string): Promise<string | undefined> {
  const row = await db.selectFrom('users').select('handle').where('id', '=', id).executeTakeFirst();
  return row?.handle;
}

export async function updateUser(db: Db, id: string, changes: { display_name?: string; skills?: string[] }) {
  return db.updateTable('users').set(changes).where('id', '=', id).returning(USER_COLUMNS).executeTakeFirst();
}

export async function insertRefreshToken(
  db: Executor,
  token: { userId: string; familyId: string; hash: Buffer; ttlSeconds: number },
): Promise<void> {
  await db
    .insertInto('refresh_tokens')
    .values({
      user_id: token.userId,
      family_id: token.familyId,
      token_hash: token.hash,
      expires_at: sql<Date>`now() + make_interval(secs => ${token.ttlSeconds})`,
    })
    .execute();
}

/**
 * Session changes of one user take turns on the user's row: a refresh, a logout, a reuse
 * revocation and a password change each hold it until they commit. Without that, a revocation
 * whose UPDATE began while a refresh was storing its new token would never see that token, and
 * the session it meant to end would go on (its snapshot predates the insert). FOR NO KEY UPDATE:
 * the lock a password change's own UPDATE of the row takes, so it queues with them too.
 */
export async function lockSessions(trx: Transaction<Database>, userId: string): Promise<void> {
  await sql`SELECT 1 FROM users WHERE id = ${userId}::uuid FOR NO KEY UPDATE`.execute(trx);
}

/** lockSessions for the owner of a refresh token; returns that owner, or nothing for an unknown token. */
export async function lockSessionsOfToken(trx: Transaction<Database>, hash: Buffer): Promise<string | undefined> {
  const result = await sql<{ id: string }>`
    SELECT id FROM users WHERE id = (SELECT user_id FROM refresh_tokens WHERE token_hash = ${hash})
    FOR NO KEY UPDATE`.execute(trx);
  return result.rows[0]?.id;
}

/**
 * Marks the token rotated if it is still usable and returns its owner. Exactly one concurrent
 * caller wins the UPDATE; every other presentation of the same token is a reuse.
 */
export async function rotateRefreshToken(db: Executor, hash: Buffer) {
  return db
    .updateTable('refresh_tokens')
    .set({ rotated_at: sql<Date>`now()` })
    .where('token_hash', '=', hash)
    .where('rotated_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .returning(['user_id', 'family_id'])
    .executeTakeFirst();
}

export async function findRefreshToken(db: Executor, hash: Buffer) {
  return db
    .selectFrom('refresh_tokens')
    .select(['family_id', 'rotated_at', 'revoked_at'])
    .where('token_hash', '=', hash)
    .executeTakeFirst();
}

/** Revokes every live token of a family; true if any was live. */
export async function revokeFamily(trx: Transaction<Database>, familyId: string): Promise<boolean> {
  const result = await trx
    .updateTable('refresh_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('family_id', '=', familyId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * Revokes the family of the given refresh token, if the token is this user's: every token of that
 * login stops working, rotated or not. Returns the family, or nothing when the token is unknown,
 * someone else's, or its family was already revoked.
 */
export async function revokeFamilyOfToken(trx: Transaction<Database>, userId: string, hash: Buffer) {
  const result = await sql<{ family_id: string }>`
    UPDATE refresh_tokens SET revoked_at = now()
    WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = ${hash} AND user_id = ${userId}::uuid)
      AND revoked_at IS NULL
    RETURNING family_id`.execute(trx);
  return result.rows[0]?.family_id;
}

export async function findPasswordHash(db: Executor, userId: string) {
  const row = await db.selectFrom('users').select('password_hash').where('id', '=', userId).executeTakeFirst();
  return row?.password_hash;
}

/**
 * Replaces the password hash if it is still the one the caller verified against: a concurrent
 * change in between makes this a no-op (false), never a silent overwrite.
 */
export async function replacePasswordHash(
  trx: Transaction<Database>,
  userId: string,
  verifiedHash: string,
  newHash: string,
): Promise<boolean> {
  const result = await trx
    .updateTable('users')
    .set({ password_hash: newHash })
    .where('id', '=', userId)
    .where('password_hash', '=', verifiedHash)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Revokes every live refresh token of the user outside one family (null: outside none). Returns the families revoked. */
export async function revokeFamiliesExcept(
  trx: Transaction<Database>,
  userId: string,
  keptFamilyId: string | null,
): Promise<number> {
  const result = await sql<{ families: number }>`
    WITH revoked AS (
      UPDATE refresh_tokens SET revoked_at = now()
      WHERE user_id = ${userId}::uuid AND revoked_at IS NULL AND family_id IS DISTINCT FROM ${keptFamilyId}::uuid
      RETURNING family_id
    )
    SELECT count(DISTINCT family_id)::int AS families FROM revoked`.execute(trx);
  return result.rows[0]?.families ?? 0;
}

const PURGE_BATCH = 5_000;

/**
 * Deletes refresh tokens that can no longer be presented to any effect: expired ones (a rotated
 * token's reuse is detected until its own expiry, then it is just unknown) and revoked ones (their
 * session is over; presenting one is refused either way). In batches, so no statement holds many
 * row locks or runs long; returns how many went.
 */
export async function purgeEndedSessions(db: Db): Promise<number> {
  let purged = 0;
  for (;;) {
    const result = await sql`
      DELETE FROM refresh_tokens WHERE id IN (
        SELECT id FROM refresh_tokens WHERE expires_at < now()
        UNION
        SELECT id FROM refresh_tokens WHERE revoked_at IS NOT NULL
        LIMIT ${PURGE_BATCH}
      )`.execute(db);
    const deleted = Number(result.numAffectedRows ?? 0);
    purged += deleted;
    if (deleted < PURGE_BATCH) return purged;
  }
}
