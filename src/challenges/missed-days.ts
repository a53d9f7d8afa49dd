import { sql } from 'kysely';
import type { ChallengeStatus } from '../infra/database-schema.js';
import type { Db } from '../infra/postgres.js';
import { addDays, challengeDayAt } from './challenge-days.js';

// Closed challenges count: the last day is announced the day after it, when the closing job has
// usually closed the challenge already. A cancelled challenge stops being announced.
const ANNOUNCED: ChallengeStatus[] = ['active', 'closed'];

/**
 * For each challenge not cancelled, once per challenge day: every member (still in the circle: one
 * who left hears nothing more from it) whose streak was alive when yesterday began and who did not
 * check in yesterday gets a `challenge.day_missed` event
 * addressed to them (recipient_id, kept out of the circle's feed; also payload.userId), saying
 * whether a freeze kept the streak (`streakKept`) or it ended. The challenge's
 * `missed_days_noticed_through` advances in the same transaction as the events, under the row's
 * lock, so each day is announced once however many workers sweep. Returns the events written.
 */
export async function noticeMissedDays(db: Db, now: number): Promise<number> {
  // Coarse bounds from the UTC date (every zone's date is within a day of it); the exact
  // yesterday of each challenge's zone is decided below.
  const utcDate = new Date(now).toISOString().slice(0, 10);
  const running = await db
    .selectFrom('challenges')
    .select(['id', 'timezone', 'day_starts_at', 'starts_on', 'ends_on', 'missed_days_noticed_through'])
    .where('status', 'in', ANNOUNCED)
    .where('starts_on', '<=', utcDate)
    .where('ends_on', '>=', addDays(utcDate, -2))
    .execute();
  let written = 0;
  for (const c of running) {
    const yesterday = addDays(challengeDayAt(now, c.timezone, c.day_starts_at), -1);
    if (yesterday < c.starts_on || yesterday > c.ends_on) continue;
    if (c.missed_days_noticed_through !== null && c.missed_days_noticed_through >= yesterday) continue;
    written += await db.transaction().execute(async (trx) => {
      const claimed = await trx
        .updateTable('challenges')
        .set({ missed_days_noticed_through: yesterday })
        .where('id', '=', c.id)
        .where('status', 'in', ANNOUNCED)
        .where((eb) =>
          eb.or([eb('missed_days_noticed_through', 'is', null), eb('missed_days_noticed_through', '<', yesterday)]),
        )
        .returning(['circle_id', 'freezes_per_member'])
        .executeTakeFirst();
      if (!claimed) return 0; // another worker announced this day
      const y = sql`${yesterday}::date`;
      const freezes = sql`${claimed.freezes_per_member}::int`;
      const result = await sql`
        WITH missed AS (
          UPDATE challenge_participants p SET missed_noticed_on = ${y}
          WHERE p.challenge_id = ${c.id}::uuid AND p.last_date < ${y}
            AND ${y} - p.last_date - 1 <= ${freezes} - p.freezes_used
            AND EXISTS (SELECT 1 FROM memberships m
                        WHERE m.circle_id = p.circle_id AND m.user_id = p.user_id AND m.left_at IS NULL)
          RETURNING p.user_id, p.run, ${y} - p.last_date <= ${freezes} - p.freezes_used AS kept,
                    ${freezes} - p.freezes_used - (${y} - p.last_date) AS freezes_left
        )
        INSERT INTO events (circle_id, type, subject_id, recipient_id, recipient_only, payload)
        SELECT ${claimed.circle_id}::uuid, 'challenge.day_missed', ${c.id}::uuid, user_id, true,
               jsonb_build_object('userId', user_id, 'challengeId', ${c.id}::uuid, 'localDate', ${y}, 'streak', run,
                                  'streakKept', kept, 'freezesLeft', greatest(freezes_left, 0))
        FROM missed`.execute(trx);
      return Number(result.numAffectedRows ?? 0);
    });
  }
  return written;
}
