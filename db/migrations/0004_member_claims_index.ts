import { sql, type Kysely } from 'kysely';

// claims_one_live_per_member led with task_id, so "this member's live claims" (which claims/next
// asks on every call, to skip tasks the member already holds) could only be answered by reading the
// whole index: a cost that grew with every live claim in the service. Leading with user_id keeps
// the same uniqueness rule, turns that question into a short range scan, and still serves the
// per-task probe (task_id and user_id both given). Lookups by task alone use claims_task_idx.
// Runs inside the migration's transaction, so the rule is never missing.
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    DROP INDEX claims_one_live_per_member;
    CREATE UNIQUE INDEX claims_one_live_per_member ON claims (user_id, task_id) WHERE status IN ('active', 'submitted');
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP INDEX claims_one_live_per_member;
    CREATE UNIQUE INDEX claims_one_live_per_member ON claims (task_id, user_id) WHERE status IN ('active', 'submitted');
  `.execute(db);
}
