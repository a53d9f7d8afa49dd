import { sql, type Kysely } from 'kysely';

// A dependency of a parent task holds back its whole subtree: "Chapter 2 depends on Chapter 1"
// means none of Chapter 2's pages can be claimed yet. Claimability read only a leaf's own
// `blocking_deps`, so the pages under a blocked chapter were claimable. `blocked_ancestors` counts
// the task's ancestors that are blocked (`blocking_deps > 0`); a task is claimable only when both
// are 0, and the claimable index says so. Backfilled from the tree as it stands.
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE tasks ADD COLUMN blocked_ancestors integer NOT NULL DEFAULT 0 CHECK (blocked_ancestors >= 0);
    WITH RECURSIVE walk AS (
      SELECT id, 0 AS blocked FROM tasks WHERE parent_id IS NULL
      UNION ALL
      SELECT c.id, walk.blocked + (CASE WHEN p.blocking_deps > 0 THEN 1 ELSE 0 END)
      FROM tasks c JOIN walk ON c.parent_id = walk.id JOIN tasks p ON p.id = walk.id
    )
    UPDATE tasks t SET blocked_ancestors = walk.blocked FROM walk WHERE t.id = walk.id AND walk.blocked > 0;
    DROP INDEX tasks_claimable_idx;
    CREATE INDEX tasks_claimable_idx ON tasks (project_id, priority DESC, seq)
      WHERE status = 'open' AND is_leaf AND blocking_deps = 0 AND blocked_ancestors = 0 AND live_claims < slots;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP INDEX tasks_claimable_idx;
    CREATE INDEX tasks_claimable_idx ON tasks (project_id, priority DESC, seq)
      WHERE status = 'open' AND is_leaf AND blocking_deps = 0 AND live_claims < slots;
    ALTER TABLE tasks DROP COLUMN blocked_ancestors;
  `.execute(db);
}
