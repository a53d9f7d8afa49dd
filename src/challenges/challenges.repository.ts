import { type Selectable, sql, type Transaction } from 'kysely';
import type { ChallengesTable, Database } from '../infra/database-schema.js';
import type { Db, Executor } from '../infra/postgres.js';
import { micros, newestFirstPage } from '../infra/sql.js';
import { lockMembershipShared } from '../circles/circles.repository.js';

/** A challenge row as Postgres returns it. */
export type ChallengeRow = Selectable<ChallengesTable>;

/** The caller's current membership of the challenge's circle (role null: not a member). */
const callerMembership = (userId: string) =>
  sql<boolean>`memberships.circle_id = challenges.circle_id AND memberships.user_id = ${userId}::uuid AND memberships.left_at IS NULL`;

/** The challenge and the caller's role in its circle, in one query (see src/circles/access.ts). */
export async function findChallengeWithRole(db: Executor, challengeId: string, userId: string) {
  return db
    .selectFrom('challenges')
    .leftJoin('memberships', (join) => join.on(callerMembership(userId)))
    .selectAll('challenges')
    .select('memberships.role')
    .where('challenges.id', '=', challengeId)
    .executeTakeFirst();
}

/**
 * The same under a row lock. `update` for changing the challenge (edit, cancel, close); `share`
 * for check-ins, which may run side by side but never while its zone or day start changes.
 */
export async function lockChallengeWithRole(
  trx: Transaction<Database>,
  challengeId: string,
  userId: string,
  mode: 'update' | 'share',
) {
  const q = trx
    .selectFrom('challenges')
    .leftJoin('memberships', (join) => join.on(callerMembership(userId)))
    .selectAll('challenges')
    .select('memberships.role')
    .where('challenges.id', '=', challengeId);
  const challenge = await (mode === 'update' ? q.forUpdate('challenges') : q.forShare('challenges')).executeTakeFirst();
  if (mode === 'share' || !challenge?.role) return challenge;
  // As lockProjectWithRole: the role read again with the membership share-locked, so a demotion in
  // flight waits for the change. (Check-ins lock the membership themselves.)
  const membership = await lockMembershipShared(trx, challenge.circle_id, userId);
  return { ...challenge, role: membership?.role ?? null };
}

export async function insertChallenge(
  trx: Transaction<Database>,
  row: Omit<
    ChallengeRow,
    | 'id'
    | 'status'
    | 'cancel_reason'
    | 'cancelled_on'
    | 'missed_days_noticed_through'
    | 'created_at'
    | 'updated_at'
    | 'closed_at'
  >,
) {
  return trx.insertInto('challenges').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function updateChallenge(
  trx: Transaction<Database>,
  challengeId: string,
  changes: Partial<Omit<ChallengeRow, 'id' | 'circle_id' | 'created_at' | 'created_by'>>,
) {
  return trx
    .updateTable('challenges')
    .set({ ...changes, updated_at: sql<Date>`now()` })
    .where('id', '=', challengeId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function hasCheckins(trx: Transaction<Database>, challengeId: string): Promise<boolean> {
  const row = await trx
    .selectFrom('checkins')
    .select(sql<number>`1`.as('one'))
    .where('challenge_id', '=', challengeId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** The circle's challenges, newest first, keyset-paginated on (created_at, id). */
export async function listChallenges(db: Db, circleId: string, limit: number, after: [number, string] | null) {
  const q = db
    .selectFrom('challenges')
    .selectAll()
    .select(micros('challenges.created_at').as('cursor_ts'))
    .where('circle_id', '=', circleId);
  return newestFirstPage(q, limit, after).execute();
}

/** A member's counts and streak state in a challenge, if they have checked in. */
export async function findParticipant(db: Executor, challengeId: string, userId: string) {
  return db
    .selectFrom('challenge_participants')
    .selectAll()
    .where('challenge_id', '=', challengeId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
}
