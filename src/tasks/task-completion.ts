import { sql, type Transaction } from 'kysely';
import type { Database } from '../infra/database-schema.js';
import { recordEvents } from '../events/events.repository.js';

/**
 * Records one accepted submission on a task (whose claim claims/acceptClaim has accepted, freeing
 * its slot): counts the accept, and when the task reaches its required accepts marks it done, rolls
 * completion up to its parents, and unblocks the tasks that depended on anything that just became done.
 * Returns the ids of tasks that became done (leaf first, then ancestors).
 */
export async function recordAcceptedWork(
  trx: Transaction<Database>,
  taskId: string,
  circleId: string,
): Promise<string[]> {
  const updated = await sql<{ parent_id: string | null; became_done: boolean }>`
    UPDATE tasks
    SET accepted_count = accepted_count + 1,
        status = CASE WHEN status = 'open' AND accepted_count + 1 >= required_accepts THEN 'done' ELSE status END
    WHERE id = ${taskId}::uuid
    RETURNING parent_id, (status = 'done' AND accepted_count = required_accepts) AS became_done`.execute(trx);
  const row = updated.rows[0];
  if (!row?.became_done) return [];

  const done = [taskId];
  let parentId = row.parent_id;
  while (parentId) {
    // Lock the parent in its own statement first: a sibling finishing concurrently holds this lock
    // until it commits, so the check below (a new statement, a new snapshot) sees its child done.
    await sql`SELECT 1 FROM tasks WHERE id = ${parentId}::uuid FOR UPDATE`.execute(trx);
    const parent = await sql<{ id: string; parent_id: string | null }>`
      UPDATE tasks p SET status = 'done'
      WHERE p.id = ${parentId}::uuid AND p.status = 'open'
        AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = p.id AND c.status = 'open')
      RETURNING p.id, p.parent_id`.execute(trx);
    const next = parent.rows[0];
    if (!next) break;
    done.push(next.id);
    parentId = next.parent_id;
  }

  await sql`
    UPDATE tasks t SET blocking_deps = t.blocking_deps - x.n
    FROM (SELECT task_id, count(*)::int AS n FROM task_dependencies WHERE depends_on_id = ANY(${done}::uuid[]) GROUP BY task_id) x
    WHERE t.id = x.task_id`.execute(trx);
  await recordEvents(
    trx,
    done.map((id) => ({ circleId, type: 'task.completed', subjectId: id })),
  );
  return done;
}
