import { sql, type Kysely } from 'kysely';

// Redundancy means that many different members: a member whose work on a task was accepted takes
// no other slot of it. One unique index on (user_id, task_id) over live and accepted claims makes
// that a database rule across processes, and also makes "one accept per member and task" one.
//
// Data written before the rule may break it in two ways, handled here without rewriting history:
// - a member accepted more than once on one task: those accepted claims and their contributions
//   stand. Each repeat (every accept after the member's first) keeps its own id in repeat_key, so
//   the index, which treats NULLs as equal, counts it apart; new claims always have NULL there.
// - a member holding a live claim on a task they already contributed to: the claim is revoked
//   (slot freed, event recorded), as an owner would, since accepting it would be a repeat.
//
// Revised claims now hold a member slot like any active claim (see src/claims/claims.repository.ts):
// active claims sent back by revise before this migration get one, numbered above the member's
// highest, so they count against the cap from now on.
//
// Runs inside the migration's transaction, so the rule is never missing.
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE claims ADD COLUMN repeat_key uuid;

    UPDATE claims c SET repeat_key = c.id
    WHERE c.status = 'accepted' AND EXISTS (
      SELECT 1 FROM claims e
      WHERE e.user_id = c.user_id AND e.task_id = c.task_id AND e.status = 'accepted' AND (e.created_at, e.id) < (c.created_at, c.id));

    WITH ended AS (
      UPDATE claims c SET status = 'revoked', member_slot = NULL, revoke_reason = 'You already contributed to this task.', updated_at = now()
      WHERE c.status IN ('active', 'submitted') AND EXISTS (
        SELECT 1 FROM claims e WHERE e.user_id = c.user_id AND e.task_id = c.task_id AND e.status = 'accepted')
      RETURNING c.id, c.circle_id, c.task_id, c.revoke_reason
    ), freed AS (
      UPDATE tasks t SET live_claims = t.live_claims - x.n
      FROM (SELECT task_id, count(*)::int AS n FROM ended GROUP BY task_id) x
      WHERE t.id = x.task_id
    )
    INSERT INTO events (circle_id, type, subject_id, actor_id, payload)
    SELECT circle_id, 'claim.revoked', id, NULL, jsonb_build_object('taskId', task_id, 'reason', revoke_reason) FROM ended;

    UPDATE claims c SET member_slot = x.slot
    FROM (
      SELECT n.id, coalesce(h.top, 0) + row_number() OVER (PARTITION BY n.user_id ORDER BY n.created_at, n.id) AS slot
      FROM claims n
      LEFT JOIN (SELECT user_id, max(member_slot) AS top FROM claims WHERE status = 'active' GROUP BY user_id) h ON h.user_id = n.user_id
      WHERE n.status = 'active' AND n.member_slot IS NULL
    ) x
    WHERE c.id = x.id;

    DROP INDEX claims_one_live_per_member;
    CREATE UNIQUE INDEX claims_one_per_member_and_task ON claims (user_id, task_id, repeat_key) NULLS NOT DISTINCT
      WHERE status IN ('active', 'submitted', 'accepted');
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP INDEX claims_one_per_member_and_task;
    ALTER TABLE claims DROP COLUMN repeat_key;
    CREATE UNIQUE INDEX claims_one_live_per_member ON claims (user_id, task_id) WHERE status IN ('active', 'submitted');
  `.execute(db);
}
