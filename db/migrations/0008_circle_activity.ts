import { sql, type Kysely } from 'kysely';

// The circle's activity: leaderboard, feed, inbox, lease reminders and health figures.
// - circles.timezone: the IANA zone the circle's health figures count local days in.
// - events.recipient_id: the member an event concerns (their claim reviewed, expired, revoked,
//   their lease ending, their payout), so the inbox is a walk along events_recipient_idx.
//   recipient_only marks notices meant for that member alone (a payout, a lease reminder): they
//   stay out of the circle's feed, which walks events_feed_idx / events_feed_type_idx.
// - events.xact_id and contributions.xact_id: the writing transaction. A page cursor carries the
//   snapshot its first page was read in, and later pages count only rows visible in it
//   (pg_visible_in_snapshot), so a walk never repeats or skips a row however rows commit meanwhile,
//   late commits of lower ids included. Rows from before this migration have none and count as
//   visible to every snapshot. Set by default, so every writer fills it without knowing.
// - events_one_lease_reminder: at most one lease reminder per claim and lease period (a lease
//   period starts when the claim is made or revised), whatever the number of workers.
// - Backfill: earlier review, expiry and revocation events get their recipient, and each member
//   paid by an earlier settlement gets its payout notice, dated when the settlement completed.
// - Indexes for the reads by circle and time of the leaderboard and the health figures.
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE circles ADD COLUMN timezone text NOT NULL DEFAULT 'UTC';

    ALTER TABLE events
      ADD COLUMN recipient_id uuid,
      ADD COLUMN recipient_only boolean NOT NULL DEFAULT false,
      ADD COLUMN xact_id xid8,
      ADD CONSTRAINT events_recipient_only_has_recipient CHECK (NOT recipient_only OR recipient_id IS NOT NULL);
    ALTER TABLE events ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id();

    UPDATE events e SET recipient_id = c.user_id
    FROM reviews r JOIN claims c ON c.id = r.claim_id
    WHERE e.type = 'review.created' AND r.id = e.subject_id;
    UPDATE events e SET recipient_id = c.user_id
    FROM claims c
    WHERE e.type IN ('claim.expired', 'claim.revoked') AND c.id = e.subject_id;
    INSERT INTO events (circle_id, type, subject_id, recipient_id, recipient_only, payload, created_at, relayed_at)
    SELECT p.circle_id, 'payout.credited', p.user_id, p.user_id, true,
           jsonb_build_object('settlementId', s.id, 'projectId', s.project_id, 'amount', p.amount, 'unit', s.unit, 'points', p.points),
           s.completed_at, now()
    FROM payouts p JOIN settlements s ON s.id = p.settlement_id
    WHERE s.status = 'completed' AND p.amount > 0
    ORDER BY s.completed_at, s.id, p.rank;

    CREATE INDEX events_recipient_idx ON events (recipient_id, id) WHERE recipient_id IS NOT NULL;
    CREATE INDEX events_feed_idx ON events (circle_id, id) WHERE NOT recipient_only;
    CREATE INDEX events_feed_type_idx ON events (circle_id, type, id) WHERE NOT recipient_only;
    CREATE UNIQUE INDEX events_one_lease_reminder ON events (subject_id, (payload ->> 'leaseStartedAt'))
      WHERE type = 'claim.lease_ending';

    ALTER TABLE contributions ADD COLUMN xact_id xid8;
    ALTER TABLE contributions ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id();
    CREATE INDEX contributions_circle_time_idx ON contributions (circle_id, created_at) INCLUDE (user_id, points, id, xact_id);
    CREATE INDEX claims_circle_time_idx ON claims (circle_id, created_at) INCLUDE (user_id);
    CREATE INDEX claims_circle_live_idx ON claims (circle_id, expires_at) WHERE status = 'active';
    CREATE INDEX submissions_circle_time_idx ON submissions (circle_id, created_at) INCLUDE (user_id);
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP INDEX submissions_circle_time_idx, claims_circle_live_idx, claims_circle_time_idx, contributions_circle_time_idx;
    ALTER TABLE contributions DROP COLUMN xact_id;
    DROP INDEX events_one_lease_reminder, events_feed_type_idx, events_feed_idx, events_recipient_idx;
    ALTER TABLE events DROP CONSTRAINT events_recipient_only_has_recipient,
      DROP COLUMN xact_id, DROP COLUMN recipient_only, DROP COLUMN recipient_id;
    ALTER TABLE circles DROP COLUMN timezone;
  `.execute(db);
}
