import { sql, type Kysely } from 'kysely';

// A cancelled challenge remembers the challenge day it was cancelled on. Streaks are evaluated up
// to that day: without it, every streak of a cancelled challenge kept decaying day after day, as
// if members went on missing days of a challenge that no longer ran.
// Existing cancelled challenges take the day of their `challenge.cancelled` event, or of their
// last update when the event is gone, in the challenge's zone and day start (the rule of
// challengeDayAt), never after their last day (a challenge cannot be cancelled once over).
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE challenges ADD COLUMN cancelled_on date;
    UPDATE challenges c
    SET cancelled_on = least(c.ends_on, ((coalesce(
          (SELECT max(e.created_at) FROM events e WHERE e.subject_id = c.id AND e.type = 'challenge.cancelled'),
          c.updated_at) - make_interval(mins => c.day_starts_at)) AT TIME ZONE c.timezone)::date)
    WHERE c.status = 'cancelled';
    ALTER TABLE challenges ADD CONSTRAINT challenges_cancelled_on
      CHECK ((status = 'cancelled') = (cancelled_on IS NOT NULL) AND cancelled_on <= ends_on);
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE challenges DROP COLUMN cancelled_on`.execute(db);
}
