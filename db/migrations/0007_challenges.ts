import { sql, type Kysely } from 'kysely';

// Check-in challenges: the challenge, each member's check-ins (one per member per challenge day,
// enforced here), and a per-member summary the leaderboard sorts on. Check-ins earn points in the
// contribution ledger at circle level (no project): each check-in row has exactly one contribution
// row pointing back at it.
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE challenges (
      id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      circle_id           uuid NOT NULL REFERENCES circles(id) ON DELETE CASCADE,
      title               text NOT NULL,
      description         text NOT NULL DEFAULT '',
      -- Local calendar days in the challenge's zone, first and last inclusive.
      starts_on           date NOT NULL,
      ends_on             date NOT NULL CHECK (ends_on >= starts_on),
      timezone            text NOT NULL,
      day_starts_at       integer NOT NULL DEFAULT 0 CHECK (day_starts_at BETWEEN 0 AND 360),
      points_per_checkin  integer NOT NULL CHECK (points_per_checkin BETWEEN 0 AND 1000000),
      min_content_length  integer NOT NULL DEFAULT 1 CHECK (min_content_length BETWEEN 0 AND 10000),
      make_up_allowance   integer NOT NULL DEFAULT 0 CHECK (make_up_allowance BETWEEN 0 AND 366),
      make_up_window_days integer NOT NULL DEFAULT 7 CHECK (make_up_window_days BETWEEN 1 AND 366),
      freezes_per_member  integer NOT NULL DEFAULT 0 CHECK (freezes_per_member BETWEEN 0 AND 366),
      status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled', 'closed')),
      -- The instant the last day ends (computed from ends_on, zone and day start): when it closes.
      ends_at             timestamptz NOT NULL,
      cancel_reason       text,
      -- The day before which missed days have been announced to members (see the daily sweep).
      missed_days_noticed_through date,
      created_by          uuid NOT NULL REFERENCES users(id),
      created_at          timestamptz NOT NULL DEFAULT now(),
      updated_at          timestamptz NOT NULL DEFAULT now(),
      closed_at           timestamptz,
      CHECK ((status = 'closed') = (closed_at IS NOT NULL))
    );
    CREATE INDEX challenges_circle_idx ON challenges (circle_id, created_at, id);
    -- What the closing sweep looks for: running challenges whose last day is over.
    CREATE INDEX challenges_due_idx ON challenges (ends_at) WHERE status = 'active';

    CREATE TABLE checkins (
      id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      challenge_id  uuid NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
      circle_id     uuid NOT NULL,
      user_id       uuid NOT NULL REFERENCES users(id),
      local_date    date NOT NULL,
      content       text NOT NULL,
      links         text[] NOT NULL DEFAULT '{}',
      -- sha256 of the normalized content (NFKC, case folded, whitespace collapsed).
      content_key   text NOT NULL,
      make_up       boolean NOT NULL DEFAULT false,
      points        integer NOT NULL CHECK (points >= 0),
      created_at    timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT checkins_one_per_member_day UNIQUE (challenge_id, user_id, local_date),
      CONSTRAINT checkins_no_duplicate_content UNIQUE (challenge_id, user_id, content_key)
    );

    -- One row per member who checked in: the counts and the streak state after their last check-in
    -- day (src/challenges/streaks.ts), kept in the check-in's transaction, so the leaderboard sorts
    -- rows instead of walking calendars.
    CREATE TABLE challenge_participants (
      challenge_id   uuid NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
      user_id        uuid NOT NULL REFERENCES users(id),
      circle_id      uuid NOT NULL,
      checkins       integer NOT NULL DEFAULT 0 CHECK (checkins >= 0),
      make_ups_used  integer NOT NULL DEFAULT 0 CHECK (make_ups_used >= 0),
      last_date      date,
      run            integer NOT NULL DEFAULT 0 CHECK (run >= 0),
      best_streak    integer NOT NULL DEFAULT 0 CHECK (best_streak >= run),
      freezes_used   integer NOT NULL DEFAULT 0 CHECK (freezes_used >= 0),
      -- The last day a "day missed" notice was written for this member.
      missed_noticed_on date,
      created_at     timestamptz NOT NULL DEFAULT now(),
      updated_at     timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (challenge_id, user_id)
    );
    CREATE INDEX challenge_participants_checkins_idx ON challenge_participants (challenge_id, checkins DESC, user_id);

    -- Check-in points at circle level: the row names its check-in; one contribution per check-in.
    ALTER TABLE contributions ADD COLUMN checkin_id uuid UNIQUE REFERENCES checkins(id);
    ALTER TABLE contributions ADD CONSTRAINT contributions_checkin_source CHECK ((source = 'checkin') = (checkin_id IS NOT NULL));
    -- The fingerprint covers the new column. concat_ws skips NULLs, so every row written before
    -- (checkin_id NULL) keeps the fingerprint it has.
    CREATE OR REPLACE FUNCTION contribution_fingerprint(c contributions) RETURNS text LANGUAGE sql IMMUTABLE AS $$
      SELECT md5(concat_ws('|', c.id, c.circle_id, c.project_id, c.user_id, c.source, c.task_id, c.claim_id, c.points, c.reason, c.created_by,
                           to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), c.checkin_id))
    $$;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE OR REPLACE FUNCTION contribution_fingerprint(c contributions) RETURNS text LANGUAGE sql IMMUTABLE AS $$
      SELECT md5(concat_ws('|', c.id, c.circle_id, c.project_id, c.user_id, c.source, c.task_id, c.claim_id, c.points, c.reason, c.created_by,
                           to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')))
    $$;
    ALTER TABLE contributions DROP CONSTRAINT contributions_checkin_source;
    ALTER TABLE contributions DROP COLUMN checkin_id;
    DROP TABLE challenge_participants, checkins, challenges;
  `.execute(db);
}
