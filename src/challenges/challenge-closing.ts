import { sql } from 'kysely';
import type { Db } from '../infra/postgres.js';
import { recordEvent } from '../events/events.repository.js';

/** How many members the closing summary names as the longest streaks. */
export const SUMMARY_STREAKS = 5;

/**
 * Closes a challenge whose last day is over and writes its summary event, once: the challenge row
 * is locked and only an active challenge past its end is closed, so a second delivery, the sweep
 * and an early job (the end was moved later by an edit) all find nothing to do. Returns whether
 * this call closed it.
 */
export async function closeChallengeIfDue(db: Db, challengeId: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const due = await trx
      .selectFrom('challenges')
      .select(['id', 'circle_id', 'title', 'starts_on', 'ends_on'])
      .where('id', '=', challengeId)
      .where('status', '=', 'active')
      .where('ends_at', '<=', sql<Date>`now()`)
      .forUpdate()
      .executeTakeFirst();
    if (!due) return false;
    const totals = await trx
      .selectFrom('challenge_participants')
      .select([
        sql<number>`count(*)::int`.as('participants'),
        sql<number>`coalesce(sum(checkins), 0)::int`.as('checkins'),
        sql<number>`coalesce(sum(make_ups_used), 0)::int`.as('make_ups'),
      ])
      .where('challenge_id', '=', challengeId)
      .executeTakeFirstOrThrow();
    const longest = await trx
      .selectFrom('challenge_participants as p')
      .innerJoin('users as u', 'u.id', 'p.user_id')
      // Named streaks are members', as on the leaderboard; the totals above count everyone's.
      .innerJoin('memberships as m', (j) =>
        j.onRef('m.circle_id', '=', 'p.circle_id').onRef('m.user_id', '=', 'p.user_id').on('m.left_at', 'is', null),
      )
      .select(['p.user_id', 'u.handle', 'p.best_streak', 'p.checkins'])
      .where('p.challenge_id', '=', challengeId)
      .orderBy('p.best_streak', 'desc')
      .orderBy('p.checkins', 'desc')
      .orderBy('p.user_id')
      .limit(SUMMARY_STREAKS)
      .execute();
    await trx
      .updateTable('challenges')
      .set({ status: 'closed', closed_at: sql<Date>`now()`, updated_at: sql<Date>`now()` })
      .where('id', '=', challengeId)
      .execute();
    await recordEvent(trx, {
      circleId: due.circle_id,
      type: 'challenge.closed',
      subjectId: challengeId,
      payload: {
        title: due.title,
        startsOn: due.starts_on,
        endsOn: due.ends_on,
        participants: totals.participants,
        checkins: totals.checkins,
        makeUps: totals.make_ups,
        longestStreaks: longest.map((r) => ({
          userId: r.user_id,
          handle: r.handle,
          bestStreak: r.best_streak,
          checkins: r.checkins,
        })),
      },
    });
    return true;
  });
}

/** When an active challenge's last day ends; undefined for one not active (or not there). */
export async function challengeEndsAt(db: Db, challengeId: string): Promise<Date | undefined> {
  const row = await db
    .selectFrom('challenges')
    .select('ends_at')
    .where('id', '=', challengeId)
    .where('status', '=', 'active')
    .executeTakeFirst();
  return row?.ends_at;
}

/** Active challenges whose last day is over: what the closing sweep closes. */
export async function endedChallenges(db: Db, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('challenges')
    .select('id')
    .where('status', '=', 'active')
    .where('ends_at', '<=', sql<Date>`now()`)
    .orderBy('ends_at')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}
