import { sql, type Transaction } from 'kysely';
import type { Db, Executor } from '../infra/postgres.js';
import type { Database, JoinPolicy, Role } from '../infra/database-schema.js';
import { fromMicros, micros } from '../infra/sql.js';

/**
 * The join condition for "the caller's current membership of this row's circle". Object reads
 * left-join it, so one query returns the object and the caller's role (null: not a member), which
 * is all the access check (src/circles/access.ts) needs.
 */
export const callerMembershipOn = (
  circleColumn: 'projects.circle_id' | 'tasks.circle_id' | 'claims.circle_id' | 'settlements.circle_id',
  userId: string,
) =>
  sql<boolean>`memberships.circle_id = ${sql.ref(circleColumn)} AND memberships.user_id = ${userId}::uuid AND memberships.left_at IS NULL`;

/** A user's current membership of a circle, as a query to run plainly or under a lock. */
const currentMembership = (db: Executor, circleId: string, userId: string) =>
  db
    .selectFrom('memberships')
    .select(['role', 'joined_at'])
    .where('circle_id', '=', circleId)
    .where('user_id', '=', userId)
    .where('left_at', 'is', null);

export async function findMembership(db: Executor, circleId: string, userId: string) {
  return currentMembership(db, circleId, userId).executeTakeFirst();
}

/**
 * The same, share-locked: a departure (which updates the row) waits for the caller's transaction,
 * or has committed and the member is not found.
 */
export async function lockMembershipShared(trx: Transaction<Database>, circleId: string, userId: string) {
  return currentMembership(trx, circleId, userId).forShare().executeTakeFirst();
}

export async function insertCircle(
  trx: Transaction<Database>,
  c: { name: string; description: string; joinPolicy: JoinPolicy; ownerId: string },
) {
  const circle = await trx
    .insertInto('circles')
    .values({ name: c.name, description: c.description, join_policy: c.joinPolicy, owner_id: c.ownerId })
    .returningAll()
    .executeTakeFirstOrThrow();
  await trx.insertInto('memberships').values({ circle_id: circle.id, user_id: c.ownerId, role: 'owner' }).execute();
  return circle;
}

export async function findCircleForMember(db: Db, circleId: string, userId: string) {
  return db
    .selectFrom('circles')
    .innerJoin('memberships', 'memberships.circle_id', 'circles.id')
    .selectAll('circles')
    .select('memberships.role')
    .where('circles.id', '=', circleId)
    .where('memberships.user_id', '=', userId)
    .where('memberships.left_at', 'is', null)
    .executeTakeFirst();
}

export async function listCirclesOfUser(db: Db, userId: string, limit: number, after: [number, string] | null) {
  let q = db
    .selectFrom('memberships')
    .innerJoin('circles', 'circles.id', 'memberships.circle_id')
    .selectAll('circles')
    .select(['memberships.role', micros('memberships.joined_at').as('cursor_ts')])
    .where('memberships.user_id', '=', userId)
    .where('memberships.left_at', 'is', null);
  if (after)
    q = q.where(
      sql<boolean>`(memberships.joined_at, memberships.circle_id) > (${fromMicros(after[0])}, ${after[1]}::uuid)`,
    );
  return q
    .orderBy('memberships.joined_at')
    .orderBy('memberships.circle_id')
    .limit(limit + 1)
    .execute();
}

/**
 * The circle's row, locked until the transaction ends: for changing its settings. FOR NO KEY
 * UPDATE, the lock a settings UPDATE takes anyway: every row inserted in the circle (claims,
 * memberships, events, tasks) has its circle_id foreign key checked with a KEY SHARE lock on this
 * row, which FOR UPDATE would queue behind the whole edit.
 */
export async function lockCircle(trx: Transaction<Database>, circleId: string) {
  return trx.selectFrom('circles').selectAll().where('id', '=', circleId).forNoKeyUpdate().executeTakeFirst();
}

export async function updateCircle(
  trx: Transaction<Database>,
  circleId: string,
  next: { name: string; description: string; join_policy: JoinPolicy; timezone: string },
) {
  return trx.updateTable('circles').set(next).where('id', '=', circleId).returningAll().executeTakeFirstOrThrow();
}

export async function findCircle(db: Executor, circleId: string) {
  return db
    .selectFrom('circles')
    .select(['id', 'join_policy', 'owner_id'])
    .where('id', '=', circleId)
    .executeTakeFirst();
}

export async function insertInvite(
  trx: Transaction<Database>,
  invite: { code: string; circleId: string; createdBy: string; ttlSeconds: number; maxUses: number | null },
) {
  return trx
    .insertInto('invites')
    .values({
      code: invite.code,
      circle_id: invite.circleId,
      created_by: invite.createdBy,
      // The database's clock, the one joining judges the expiry by (useInvite): an API host whose
      // clock is off would hand out invites that die early or live too long.
      expires_at: sql<Date>`now() + make_interval(secs => ${invite.ttlSeconds})`,
      max_uses: invite.maxUses,
    })
    .returning(['code', 'expires_at', 'max_uses'])
    .executeTakeFirstOrThrow();
}

/** Spends one use of an invite if it is valid for this circle; the row update is the lock. */
export async function useInvite(trx: Transaction<Database>, circleId: string, code: string) {
  return trx
    .updateTable('invites')
    .set((eb) => ({ uses: eb('uses', '+', 1) }))
    .where('code', '=', code)
    .where('circle_id', '=', circleId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .where((eb) => eb.or([eb('max_uses', 'is', null), eb('uses', '<', eb.ref('max_uses'))]))
    .returning('code')
    .executeTakeFirst();
}

/** An invite of this circle, with whether it has expired by the database's clock (as useInvite judges). */
export async function findInvite(trx: Transaction<Database>, circleId: string, code: string) {
  return trx
    .selectFrom('invites')
    .select(['max_uses', 'uses', 'revoked_at', sql<boolean>`expires_at <= now()`.as('expired')])
    .where('code', '=', code)
    .where('circle_id', '=', circleId)
    .executeTakeFirst();
}

const INVITE_COLUMNS = ['code', 'expires_at', 'max_uses', 'uses', 'created_by', 'created_at'] as const;

/** The circle's invites that were not revoked (expired ones too), newest first. */
export async function listInvites(db: Db, circleId: string, limit: number, after: [number, string] | null) {
  let q = db
    .selectFrom('invites')
    .select([...INVITE_COLUMNS, micros('invites.created_at').as('cursor_ts')])
    .where('circle_id', '=', circleId)
    .where('revoked_at', 'is', null);
  if (after) q = q.where(sql<boolean>`(created_at, code) < (${fromMicros(after[0])}, ${after[1]})`);
  return q
    .orderBy('created_at', 'desc')
    .orderBy('code', 'desc')
    .limit(limit + 1)
    .execute();
}

/** Revokes an invite of this circle; returns it, or nothing if there is none or it was already revoked. */
export async function revokeInvite(trx: Transaction<Database>, circleId: string, code: string) {
  return trx
    .updateTable('invites')
    .set({ revoked_at: sql<Date>`now()` })
    .where('code', '=', code)
    .where('circle_id', '=', circleId)
    .where('revoked_at', 'is', null)
    .returning(INVITE_COLUMNS)
    .executeTakeFirst();
}

/** Adds a member, or brings back one who left; returns nothing if they are already a member. */
export async function upsertMember(trx: Transaction<Database>, circleId: string, userId: string) {
  return trx
    .insertInto('memberships')
    .values({ circle_id: circleId, user_id: userId, role: 'member' })
    .onConflict((oc) =>
      oc
        .columns(['circle_id', 'user_id'])
        .doUpdateSet({ role: 'member', joined_at: sql<Date>`now()`, left_at: null })
        .where('memberships.left_at', 'is not', null),
    )
    .returning(['circle_id', 'user_id', 'role', 'joined_at'])
    .executeTakeFirst();
}

const memberColumns = [
  'memberships.user_id',
  'users.handle',
  'users.display_name',
  'memberships.role',
  'memberships.joined_at',
] as const;

const member = (db: Executor, circleId: string, userId: string) =>
  db
    .selectFrom('memberships')
    .innerJoin('users', 'users.id', 'memberships.user_id')
    .select(memberColumns)
    .where('memberships.circle_id', '=', circleId)
    .where('memberships.user_id', '=', userId)
    .where('memberships.left_at', 'is', null);

export async function findMember(db: Executor, circleId: string, userId: string) {
  return member(db, circleId, userId).executeTakeFirst();
}

/** A membership the caller's transaction has just written (joined, role changed): it must be there. */
export async function readMember(trx: Transaction<Database>, circleId: string, userId: string) {
  return member(trx, circleId, userId).executeTakeFirstOrThrow();
}

export async function listMembers(db: Db, circleId: string, limit: number, after: [number, string] | null) {
  let q = db
    .selectFrom('memberships')
    .innerJoin('users', 'users.id', 'memberships.user_id')
    .select([...memberColumns, micros('memberships.joined_at').as('cursor_ts')])
    .where('memberships.circle_id', '=', circleId)
    .where('memberships.left_at', 'is', null);
  if (after)
    q = q.where(
      sql<boolean>`(memberships.joined_at, memberships.user_id) > (${fromMicros(after[0])}, ${after[1]}::uuid)`,
    );
  return q
    .orderBy('memberships.joined_at')
    .orderBy('memberships.user_id')
    .limit(limit + 1)
    .execute();
}

/** Locks the member rows of a circle that a role change touches, in a stable order (no deadlocks). */
export async function lockMembers(trx: Transaction<Database>, circleId: string, userIds: string[]) {
  return trx
    .selectFrom('memberships')
    .select(['user_id', 'role'])
    .where('circle_id', '=', circleId)
    .where('user_id', 'in', userIds)
    .where('left_at', 'is', null)
    .orderBy('user_id')
    .forUpdate()
    .execute();
}

export async function setRole(trx: Transaction<Database>, circleId: string, userId: string, role: Role): Promise<void> {
  await trx
    .updateTable('memberships')
    .set({ role })
    .where('circle_id', '=', circleId)
    .where('user_id', '=', userId)
    .execute();
}

export async function setOwner(trx: Transaction<Database>, circleId: string, ownerId: string): Promise<void> {
  await trx.updateTable('circles').set({ owner_id: ownerId }).where('id', '=', circleId).execute();
}

export async function markLeft(trx: Transaction<Database>, circleId: string, userId: string): Promise<void> {
  await trx
    .updateTable('memberships')
    .set({ left_at: sql<Date>`now()` })
    .where('circle_id', '=', circleId)
    .where('user_id', '=', userId)
    .execute();
}
