import { sql, type Kysely } from 'kysely';

// Daily rollups of a circle's member activity, so the health report reads one row per member and
// active local day instead of every claim, submission and contribution of the last 90 days.
// - circle_member_days: per circle, member and local day (in the zone the rollups were built in),
//   the member's net points that day and how many activity rows (claims, submissions,
//   contributions; a check-in earns a contribution) fell on it. Rows of every member ever, the
//   owner and former members included: the report picks current members when it reads.
// - circle_rollup_watermarks: per circle, the snapshot the rollups are folded through (every
//   source row whose writing transaction is visible in it is counted, no other) and the zone they
//   were built in. Folding takes the row's lock, so folds of one circle run one at a time, and
//   advances the watermark in the transaction that adds the rows. A watermark on transaction ids
//   rather than on ids or times: a transaction can commit an older created_at or a lower id after
//   a later one was folded, and is still not visible in the watermark, so the next fold takes it.
// - claims.xact_id and submissions.xact_id, as contributions.xact_id (0008): the writing
//   transaction, by default. Rows from before this migration have none and count as visible in
//   every snapshot, so the first fold of a circle takes them.
// - (circle_id, xact_id) indexes: the rows a circle's watermark does not cover yet are a range of
//   them (xact_id >= the watermark's xmin).
// - memberships_current_idx: a circle's current members but the owner (whom every health figure
//   counts), index only, in member order: the report merges them with the rollups without a sort.
// Circle id first in every key: the schema stays ready for distribution by circle.
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE claims ADD COLUMN xact_id xid8;
    ALTER TABLE claims ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id();
    ALTER TABLE submissions ADD COLUMN xact_id xid8;
    ALTER TABLE submissions ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id();
    CREATE INDEX contributions_circle_xact_idx ON contributions (circle_id, xact_id);
    CREATE INDEX claims_circle_xact_idx ON claims (circle_id, xact_id);
    CREATE INDEX submissions_circle_xact_idx ON submissions (circle_id, xact_id);
    CREATE INDEX memberships_current_idx ON memberships (circle_id, user_id) WHERE left_at IS NULL AND role <> 'owner';

    CREATE TABLE circle_member_days (
      circle_id uuid NOT NULL REFERENCES circles (id),
      user_id uuid NOT NULL,
      local_date date NOT NULL,
      points bigint NOT NULL,
      activities integer NOT NULL CHECK (activities > 0),
      -- The health report reads a circle's rows in member order, index only.
      PRIMARY KEY (circle_id, user_id, local_date) INCLUDE (points)
    );

    CREATE TABLE circle_rollup_watermarks (
      circle_id uuid PRIMARY KEY REFERENCES circles (id),
      folded_through pg_snapshot,
      timezone text,
      folded_at timestamptz,
      CHECK ((folded_through IS NULL) = (timezone IS NULL))
    );
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP TABLE circle_rollup_watermarks, circle_member_days;
    DROP INDEX memberships_current_idx, submissions_circle_xact_idx, claims_circle_xact_idx, contributions_circle_xact_idx;
    ALTER TABLE submissions DROP COLUMN xact_id;
    ALTER TABLE claims DROP COLUMN xact_id;
  `.execute(db);
}
