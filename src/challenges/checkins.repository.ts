import { type Selectable, sql, type Transaction } from 'kysely';
import type { CheckinsTable, Database } from '../infra/database-schema.js';
import type { Db } from '../infra/postgres.js';
import type { StreakState } from './streaks.js';

/** A check-in row as Postgres returns it. */
export type CheckinRow = Selectable<CheckinsTable>;

/**
 * The member's row of the challenge, created on their first check-in, locked until the
 * transaction ends: a member's check-ins are serialized on it, so make-ups counted, days taken and
 * the streak state never race each other.
 */
export async function lockParticipant(
  trx: Transaction<Database>,
  p: { challengeId: string; userId: string; circleId: string },
) {
  return trx
    .insertInto('challenge_participants')
    .values({ challenge_id: p.challengeId, user_id: p.userId, circle_id: p.circleId })
    .onConflict((oc) => oc.columns(['challenge_id', 'user_id']).doUpdateSet({ updated_at: sql<Date>`now()` }))
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** What the member already has on that day or with that content, if anything. */
export async function findClash(
  trx: Transaction<Database>,
  c: { challengeId: string; userId: string; localDate: string; contentKey: string },
) {
  return trx
    .selectFrom('checkins')
    .select([
      sql<boolean>`bool_or(local_date = ${c.localDate}::date)`.as('same_day'),
      sql<boolean>`bool_or(content_key = ${c.contentKey})`.as('same_content'),
    ])
    .where('challenge_id', '=', c.challengeId)
    .where('user_id', '=', c.userId)
    .where((eb) => eb.or([eb('local_date', '=', c.localDate), eb('content_key', '=', c.contentKey)]))
    .executeTakeFirst();
}

export async function insertCheckin(
  trx: Transaction<Database>,
  row: Omit<CheckinRow, 'id' | 'created_at'>,
): Promise<CheckinRow> {
  return trx.insertInto('checkins').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function memberCheckinDates(trx: Transaction<Database>, challengeId: string, userId: string) {
  const rows = await trx
    .selectFrom('checkins')
    .select('local_date')
    .where('challenge_id', '=', challengeId)
    .where('user_id', '=', userId)
    .execute();
  return rows.map((r) => r.local_date);
}

export async function saveParticipant(
  trx: Transaction<Database>,
  challengeId: string,
  userId: string,
  counts: { checkins: number; makeUpsUsed: number },
  state: StreakState,
) {
  return trx
    .updateTable('challenge_participants')
    .set({
      checkins: counts.checkins,
      make_ups_used: counts.makeUpsUsed,
      last_date: state.lastDate,
      run: state.run,
      best_streak: state.best,
      freezes_used: state.freezesUsed,
      updated_at: sql<Date>`now()`,
    })
    .where('challenge_id', '=', challengeId)
    .where('user_id', '=', userId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The member's check-ins of a challenge, latest day first, keyset-paginated on the day. */
export async function listMemberCheckins(
  db: Db,
  challengeId: string,
  userId: string,
  limit: number,
  before: string | null,
) {
  let q = db.selectFrom('checkins').selectAll().where('challenge_id', '=', challengeId).where('user_id', '=', userId);
  if (before) q = q.where('local_date', '<', before);
  return q
    .orderBy('local_date', 'desc')
    .limit(limit + 1)
    .execute();
}
