import { sql } from 'kysely';
import type { Db } from '../infra/postgres.js';

// The promises the service makes about money, points and slots, each as one SQL query that lists
// the rows breaking it. An empty result means the invariant holds. Tests run these after every
// fault scenario; operators run them with `npm run check:invariants`.

export interface InvariantResult {
  name: string;
  description: string;
  violations: number;
  samples: unknown[];
}

const CHECKS: { name: string; description: string; query: ReturnType<typeof sql> }[] = [
  {
    name: 'settlement_sums',
    description:
      'each completed settlement pays out exactly its pool: sum of payouts = distributed, distributed + undistributed = pool',
    query: sql`
      SELECT s.id, s.pool_amount, s.distributed, s.undistributed, coalesce(sum(p.amount), 0) AS paid
      FROM settlements s LEFT JOIN payouts p ON p.settlement_id = s.id
      WHERE s.status = 'completed'
      GROUP BY s.id
      HAVING coalesce(sum(p.amount), 0) <> s.distributed OR s.distributed + s.undistributed <> s.pool_amount`,
  },
  {
    name: 'settlement_ledger_matches_payouts',
    description:
      "each completed settlement booked exactly its payouts to member balances: each payee's own amount, nobody else",
    // Member by member, not just in total: a unit moved from one payee to another keeps the sums.
    query: sql`
      WITH booked AS (
        SELECT t.settlement_id, a.owner_id AS user_id, sum(e.amount) AS amount
        FROM ledger_transactions t
        JOIN ledger_entries e ON e.transaction_id = t.id
        JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'member_balance'
        WHERE t.kind = 'settlement_payout'
        GROUP BY t.settlement_id, a.owner_id
      ), paid AS (
        SELECT p.settlement_id, p.user_id, p.amount
        FROM payouts p JOIN settlements s ON s.id = p.settlement_id
        WHERE s.status = 'completed' AND p.amount > 0
      )
      SELECT coalesce(paid.settlement_id, booked.settlement_id) AS settlement_id, coalesce(paid.user_id, booked.user_id) AS user_id,
             paid.amount AS paid, booked.amount AS booked
      FROM paid FULL JOIN booked ON booked.settlement_id = paid.settlement_id AND booked.user_id = paid.user_id
      WHERE paid.amount IS DISTINCT FROM booked.amount`,
  },
  {
    name: 'unfinished_settlements_wrote_nothing',
    description: 'a settlement that is not completed has no payouts and no ledger transactions (all or nothing)',
    query: sql`
      SELECT s.id, s.status,
             (SELECT count(*) FROM payouts p WHERE p.settlement_id = s.id) AS payouts,
             (SELECT count(*) FROM ledger_transactions t WHERE t.settlement_id = s.id) AS ledger_transactions
      FROM settlements s
      WHERE s.status <> 'completed'
        AND (EXISTS (SELECT 1 FROM payouts p WHERE p.settlement_id = s.id) OR EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.settlement_id = s.id))`,
  },
  {
    name: 'projects_settled_announced_once',
    description:
      'a project has at most one project.settled event, and only once it is settled (a re-request after a failed settlement announces nothing)',
    // At most, not exactly: projects frozen before the event existed have none.
    query: sql`
      SELECT e.subject_id AS project_id, count(*) AS events, max(p.status) AS status
      FROM events e LEFT JOIN projects p ON p.id = e.subject_id
      WHERE e.type = 'project.settled'
      GROUP BY e.subject_id
      HAVING count(*) > 1 OR bool_and(p.status = 'settled') IS NOT TRUE`,
  },
  {
    name: 'ledger_transactions_balanced',
    description: "every ledger transaction's entries sum to zero",
    query: sql`SELECT transaction_id, sum(amount) AS total FROM ledger_entries GROUP BY transaction_id HAVING sum(amount) <> 0`,
  },
  {
    name: 'account_balances_match_entries',
    description: 'every account balance equals the sum of its entries',
    query: sql`
      SELECT a.id, a.balance, coalesce(sum(e.amount), 0) AS entries
      FROM ledger_accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id
      GROUP BY a.id HAVING a.balance <> coalesce(sum(e.amount), 0)`,
  },
  {
    name: 'contributions_unchanged',
    description: 'no contribution row was changed after it was written (its fingerprint still matches)',
    query: sql`SELECT c.id FROM contributions c WHERE c.fingerprint IS DISTINCT FROM contribution_fingerprint(c)`,
  },
  {
    name: 'task_slots_consistent',
    description: "each task's live claim count matches its live claims and never exceeds its slots",
    query: sql`
      SELECT t.id, t.live_claims, t.slots, count(c.id) AS live
      FROM tasks t LEFT JOIN claims c ON c.task_id = t.id AND c.status IN ('active', 'submitted')
      GROUP BY t.id HAVING t.live_claims <> count(c.id) OR count(c.id) > t.slots`,
  },
  {
    name: 'task_blocked_ancestors_consistent',
    description: "every task's blocked_ancestors counts its ancestors whose own dependencies are not all done",
    query: sql`
      WITH RECURSIVE walk AS (
        SELECT id, 0 AS blocked FROM tasks WHERE parent_id IS NULL
        UNION ALL
        SELECT c.id, walk.blocked + (CASE WHEN p.blocking_deps > 0 THEN 1 ELSE 0 END)
        FROM tasks c JOIN walk ON c.parent_id = walk.id JOIN tasks p ON p.id = walk.id
      )
      SELECT t.id, t.blocked_ancestors, walk.blocked FROM tasks t JOIN walk ON walk.id = t.id
      WHERE t.blocked_ancestors <> walk.blocked`,
  },
  {
    name: 'task_blocking_deps_consistent',
    description:
      "each task's blocking count equals its dependencies still open (done and cancelled ones block nothing)",
    query: sql`
      SELECT t.id, t.blocking_deps, count(dep.id) AS open_deps
      FROM tasks t
      LEFT JOIN task_dependencies d ON d.task_id = t.id
      LEFT JOIN tasks dep ON dep.id = d.depends_on_id AND dep.status = 'open'
      GROUP BY t.id HAVING t.blocking_deps <> count(dep.id)`,
  },
  {
    name: 'one_live_claim_per_member_and_task',
    description: 'no member holds two live claims on one task',
    query: sql`
      SELECT task_id, user_id, count(*) AS live FROM claims WHERE status IN ('active', 'submitted')
      GROUP BY task_id, user_id HAVING count(*) > 1`,
  },
  {
    name: 'submitted_claims_queued_by_latest_submission',
    description:
      "every submitted claim has a submission, and its updated_at is its latest submission's time (the review queue's order)",
    query: sql`
      SELECT c.id, c.updated_at, s.created_at AS submitted_at
      FROM claims c
      LEFT JOIN LATERAL (SELECT created_at FROM submissions WHERE claim_id = c.id ORDER BY revision DESC LIMIT 1) s ON true
      WHERE c.status = 'submitted' AND c.updated_at IS DISTINCT FROM s.created_at`,
  },
  {
    name: 'distinct_members_per_task',
    description:
      'a member whose work on a task was accepted holds no other live or accepted claim on it (repeats from before the rule aside)',
    query: sql`
      SELECT a.task_id, a.user_id, o.id AS other_claim_id, o.status
      FROM claims a JOIN claims o ON o.task_id = a.task_id AND o.user_id = a.user_id AND o.id <> a.id
      WHERE a.status = 'accepted' AND a.repeat_key IS NULL AND o.status IN ('active', 'submitted', 'accepted') AND o.repeat_key IS NULL`,
  },
  {
    name: 'active_claims_hold_member_slots',
    description:
      'every active claim, revised work included, holds a member slot (counts against the cap), and only revised work holds an overflow slot',
    query: sql`
      SELECT c.id, c.user_id, c.member_slot
      FROM claims c
      WHERE c.status = 'active'
        AND (c.member_slot IS NULL
          OR (c.member_slot < 0 AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.claim_id = c.id AND r.decision = 'revise')))`,
  },
  {
    name: 'one_contribution_per_accepted_claim',
    description: 'every accepted claim has exactly one task contribution, and only accepted claims have one',
    query: sql`
      SELECT c.id, c.status, count(k.id) AS contributions
      FROM claims c LEFT JOIN contributions k ON k.claim_id = c.id
      GROUP BY c.id HAVING (c.status = 'accepted') <> (count(k.id) = 1) OR count(k.id) > 1`,
  },
  {
    name: 'one_checkin_per_member_day',
    description:
      'no member has two check-ins on one day of a challenge, and every check-in lies within its challenge, on or before the day it was cancelled',
    query: sql`
      SELECT k.challenge_id, k.user_id, k.local_date, count(*) AS checkins
      FROM checkins k JOIN challenges c ON c.id = k.challenge_id
      GROUP BY k.challenge_id, k.user_id, k.local_date, c.starts_on, c.ends_on, c.cancelled_on
      HAVING count(*) > 1 OR k.local_date NOT BETWEEN c.starts_on AND c.ends_on OR k.local_date > c.cancelled_on`,
  },
  {
    name: 'checkin_points_match_checkins',
    description:
      'every check-in has exactly one contribution of its points (circle level, source checkin, its member), and every checkin contribution has its check-in',
    query: sql`
      SELECT coalesce(k.id, p.checkin_id) AS checkin_id, k.points AS checkin_points, p.points AS contributed, p.contributions
      FROM checkins k
      FULL JOIN (
        SELECT checkin_id, min(user_id::text) AS user_id, min(circle_id::text) AS circle_id, sum(points) AS points,
               count(*) AS contributions, bool_or(project_id IS NOT NULL) AS in_project
        FROM contributions WHERE source = 'checkin' GROUP BY checkin_id
      ) p ON p.checkin_id = k.id
      WHERE k.id IS NULL OR p.checkin_id IS NULL OR p.contributions <> 1 OR p.points <> k.points OR p.in_project
         OR p.user_id <> k.user_id::text OR p.circle_id <> k.circle_id::text`,
  },
  {
    name: 'challenge_participants_match_checkins',
    description:
      "each member's challenge summary counts their check-ins and make-ups and names their last check-in day",
    query: sql`
      SELECT coalesce(p.challenge_id, k.challenge_id) AS challenge_id, coalesce(p.user_id, k.user_id) AS user_id,
             p.checkins, k.checkins AS counted, p.make_ups_used, k.make_ups AS make_ups_counted, p.last_date, k.last_date AS last_counted
      FROM challenge_participants p
      FULL JOIN (
        SELECT challenge_id, user_id, count(*) AS checkins, count(*) FILTER (WHERE make_up) AS make_ups, max(local_date) AS last_date
        FROM checkins GROUP BY challenge_id, user_id
      ) k ON k.challenge_id = p.challenge_id AND k.user_id = p.user_id
      WHERE p.challenge_id IS NULL
         OR p.checkins <> coalesce(k.checkins, 0)
         OR p.make_ups_used <> coalesce(k.make_ups, 0)
         OR p.last_date IS DISTINCT FROM k.last_date`,
  },
  {
    name: 'closed_challenges_summarised_once',
    description: 'every closed challenge has exactly one summary event, and no other challenge has one',
    query: sql`
      SELECT c.id, c.status, count(e.id) AS summaries
      FROM challenges c LEFT JOIN events e ON e.subject_id = c.id AND e.type = 'challenge.closed'
      GROUP BY c.id HAVING (c.status = 'closed') <> (count(e.id) = 1) OR count(e.id) > 1`,
  },
  {
    name: 'inbox_events_name_their_member',
    description:
      "every review, expiry, revocation and lease reminder is in the inbox of the claim's member, and nobody else's",
    query: sql`
      SELECT e.id, e.type, e.recipient_id, c.user_id AS claimant
      FROM events e
      LEFT JOIN reviews r ON e.type = 'review.created' AND r.id = e.subject_id
      LEFT JOIN claims c ON c.id = CASE WHEN e.type = 'review.created' THEN r.claim_id ELSE e.subject_id END
      WHERE e.type IN ('review.created', 'claim.expired', 'claim.revoked', 'claim.lease_ending')
        AND (c.id IS NULL OR e.recipient_id IS DISTINCT FROM c.user_id)`,
  },
  {
    name: 'payout_notices_match_payouts',
    description:
      'each member paid by a completed settlement has exactly one payout notice, for their own amount, kept out of the feed',
    query: sql`
      WITH notices AS (
        SELECT (payload ->> 'settlementId')::uuid AS settlement_id, recipient_id AS user_id,
               sum((payload ->> 'amount')::bigint) AS amount, count(*) AS notices, bool_and(recipient_only) AS private
        FROM events WHERE type = 'payout.credited'
        GROUP BY 1, 2
      ), paid AS (
        SELECT p.settlement_id, p.user_id, p.amount
        FROM payouts p JOIN settlements s ON s.id = p.settlement_id
        WHERE s.status = 'completed' AND p.amount > 0
      )
      SELECT coalesce(paid.settlement_id, notices.settlement_id) AS settlement_id,
             coalesce(paid.user_id, notices.user_id) AS user_id, paid.amount AS paid, notices.amount AS noticed,
             notices.notices, notices.private
      FROM paid FULL JOIN notices ON notices.settlement_id = paid.settlement_id AND notices.user_id = paid.user_id
      WHERE paid.amount IS DISTINCT FROM notices.amount OR notices.notices <> 1 OR NOT notices.private`,
  },
  {
    name: 'one_lease_reminder_per_lease',
    description:
      'a lease ending is announced at most once per lease period, only to the member, and only before the lease ran out',
    query: sql`
      SELECT e.subject_id AS claim_id, e.payload ->> 'leaseStartedAt' AS lease_started_at, count(*) AS reminders
      FROM events e
      WHERE e.type = 'claim.lease_ending'
      GROUP BY 1, 2
      HAVING count(*) > 1 OR bool_or(NOT e.recipient_only)
        OR bool_or(e.created_at > (e.payload ->> 'expiresAt')::timestamptz)`,
  },
  {
    name: 'circle_timezones_known',
    description: "every circle's time zone is one Postgres knows, so its health figures can count local days",
    query: sql`
      SELECT c.id, c.timezone FROM circles c
      WHERE NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = c.timezone)`,
  },
  {
    name: 'challenge_timezones_known',
    description: "every challenge's time zone is one Postgres knows, so its days, closing and notices can be computed",
    query: sql`
      SELECT c.id, c.timezone FROM challenges c
      WHERE NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = c.timezone)`,
  },
  {
    name: 'webhook_deliveries_match_their_endpoint',
    description:
      "every delivery attempt belongs to its message's endpoint and circle, and every message to an endpoint of its own circle",
    query: sql`
      SELECT a.id AS attempt_id, a.message_id, a.circle_id, a.endpoint_id,
             m.circle_id AS owner_circle_id, m.endpoint_id AS owner_endpoint_id
      FROM webhook_attempts a LEFT JOIN webhook_messages m ON m.id = a.message_id
      WHERE m.id IS NULL OR m.circle_id <> a.circle_id OR m.endpoint_id <> a.endpoint_id
      UNION ALL
      SELECT NULL::uuid, m.id, m.circle_id, m.endpoint_id, w.circle_id, w.id
      FROM webhook_messages m LEFT JOIN webhook_endpoints w ON w.id = m.endpoint_id
      WHERE w.id IS NULL OR w.circle_id <> m.circle_id`,
  },
  {
    name: 'webhook_attempts_numbered_without_gaps',
    description: "each webhook message's attempts are numbered 1, 2, ... up to the attempts it counts, none missing",
    query: sql`
      SELECT m.id, m.attempts, count(a.id) AS recorded, max(a.attempt) AS highest
      FROM webhook_messages m LEFT JOIN webhook_attempts a ON a.circle_id = m.circle_id AND a.message_id = m.id
      GROUP BY m.id, m.attempts
      HAVING count(a.id) <> m.attempts OR coalesce(max(a.attempt), 0) <> m.attempts`,
  },
  {
    name: 'disabled_webhooks_have_their_event',
    description: 'every disabled webhook endpoint has the webhook.disabled event written with its disabling',
    query: sql`
      SELECT w.id, w.disabled_at, w.disabled_reason FROM webhook_endpoints w
      WHERE NOT w.enabled AND NOT EXISTS (
        SELECT 1 FROM events e
        WHERE e.type = 'webhook.disabled' AND e.subject_id = w.id AND e.created_at = w.disabled_at)`,
  },
  {
    name: 'webhook_retired_secrets_well_formed',
    description:
      "every secret an endpoint's rotations retired is a whsec_ secret with its expiry, other than the current one and listed once",
    query: sql`
      SELECT w.id FROM webhook_endpoints w
      WHERE EXISTS (
        SELECT 1 FROM jsonb_array_elements(w.retired_secrets) AS r
        WHERE jsonb_typeof(r) <> 'object'
           OR NOT coalesce(starts_with(r->>'secret', 'whsec_'), false)
           OR r->>'secret' = w.secret
           OR jsonb_typeof(r->'expiresAt') IS DISTINCT FROM 'string')
      OR (SELECT count(DISTINCT r->>'secret') FROM jsonb_array_elements(w.retired_secrets) AS r)
         <> jsonb_array_length(w.retired_secrets)`,
  },
  {
    name: 'webhook_events_carry_no_secret',
    description: 'no event carries a webhook signing secret',
    query: sql`
      SELECT e.id, e.type FROM events e
      WHERE e.type LIKE 'webhook.%' AND strpos(e.payload::text, 'whsec_') > 0`,
  },
  {
    name: 'circle_rollups_match_source',
    description:
      "each circle's daily rollups equal its claims, submissions and contributions up to its watermark, day by day in the rollups' zone; no rollups without a watermark",
    // The source rows a watermark covers: their transaction is visible in it, or they predate
    // xact_id. Rows committed since are the tail no rollup may hold yet.
    query: sql`
      WITH w AS (
        SELECT circle_id, folded_through, timezone FROM circle_rollup_watermarks WHERE folded_through IS NOT NULL
      ), src AS (
        SELECT circle_id, user_id, created_at, 0::bigint AS points, xact_id FROM claims
        UNION ALL
        SELECT circle_id, user_id, created_at, 0::bigint, xact_id FROM submissions
        UNION ALL
        SELECT circle_id, user_id, created_at, points::bigint, xact_id FROM contributions
      ), expected AS (
        SELECT s.circle_id, s.user_id, (s.created_at AT TIME ZONE w.timezone)::date AS local_date,
               sum(s.points) AS points, count(*)::int AS activities
        FROM src s JOIN w ON w.circle_id = s.circle_id
        WHERE s.xact_id IS NULL OR pg_visible_in_snapshot(s.xact_id, w.folded_through)
        GROUP BY 1, 2, 3
      )
      SELECT coalesce(e.circle_id, d.circle_id) AS circle_id, coalesce(e.user_id, d.user_id) AS user_id,
             coalesce(e.local_date, d.local_date) AS local_date,
             e.points AS source_points, d.points AS rolled_up_points,
             e.activities AS source_activities, d.activities AS rolled_up_activities
      FROM expected e
      FULL JOIN circle_member_days d ON d.circle_id = e.circle_id AND d.user_id = e.user_id AND d.local_date = e.local_date
      WHERE e.points IS DISTINCT FROM d.points OR e.activities IS DISTINCT FROM d.activities`,
  },
];

export const INVARIANT_NAMES = CHECKS.map((c) => c.name);

/** Runs every check in turn; `onResult` hears each verdict as it is reached (progress output). */
export async function checkInvariants(
  db: Db,
  onResult?: (result: InvariantResult, index: number, total: number) => void,
): Promise<InvariantResult[]> {
  const results: InvariantResult[] = [];
  for (const [i, check] of CHECKS.entries()) {
    const rows = (await check.query.execute(db)).rows;
    const result = {
      name: check.name,
      description: check.description,
      violations: rows.length,
      samples: rows.slice(0, 5),
    };
    results.push(result);
    onResult?.(result, i, CHECKS.length);
  }
  return results;
}
