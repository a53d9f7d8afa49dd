import { sql, type Transaction } from 'kysely';
import type { Database } from '../infra/database-schema.js';
import { recordEvents, type NewEvent } from '../events/events.repository.js';
import { shiftBlockedAncestors } from './tasks.repository.js';

// What happens when tasks stop being open (done or cancelled): their parents are re-evaluated and
// the tasks depending on them are unblocked. A parent whose children are all done or cancelled is
// finished too: done when at least one child is done, cancelled when every child was cancelled.
// A dependency blocks only while it is open: cancelled work will never be done, so waiting for it
// would block its dependents forever.

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
  return afterTaskDone(trx, { id: taskId, parentId: row.parent_id }, circleId);
}

/**
 * A task the caller has just marked done (its row locked by that update): rolls completion up to
 * its parents, unblocks dependents and records `task.completed` for each task that became done.
 * Returns their ids, the task first, then ancestors.
 */
export async function afterTaskDone(
  trx: Transaction<Database>,
  task: { id: string; parentId: string | null },
  circleId: string,
): Promise<string[]> {
  // Dependents before parents, as a cancel takes them: a sibling depending on this task and being
  // cancelled at once would otherwise hold the sibling and wait for the parent this holds.
  await unblockDependents(trx, [task.id]);
  const ancestors = await finishAncestors(trx, task.parentId);
  await unblockDependents(
    trx,
    ancestors.map((a) => a.id),
  );
  const done = [task.id, ...ancestors.map((a) => a.id)];
  await recordEvents(
    trx,
    done.map((id) => ({ circleId, type: 'task.completed', subjectId: id })),
  );
  return done;
}

/**
 * Tasks the caller has just cancelled (a whole open subtree, rows locked by that update; `parentId`
 * is the parent of its root): unblocks their dependents, re-evaluates the ancestors and records
 * their events (`task.cancelled` carries the reason; an ancestor finished by the roll-up gets
 * `task.completed` or `task.cancelled` like any other). Returns the ancestors that finished.
 */
export async function afterTasksCancelled(
  trx: Transaction<Database>,
  cancelled: string[],
  parentId: string | null,
  event: { circleId: string; actorId: string; reason: string },
): Promise<{ id: string; status: 'done' | 'cancelled' }[]> {
  // Dependents before parents, as completion takes them (see afterTaskDone).
  await unblockDependents(trx, cancelled);
  const ancestors = await finishAncestors(trx, parentId);
  await unblockDependents(
    trx,
    ancestors.map((a) => a.id),
  );
  const cancelledEvent = (id: string): NewEvent => ({
    circleId: event.circleId,
    type: 'task.cancelled',
    subjectId: id,
    actorId: event.actorId,
    payload: { reason: event.reason },
  });
  await recordEvents(trx, [
    ...cancelled.map(cancelledEvent),
    ...ancestors.map((a) =>
      a.status === 'done'
        ? { circleId: event.circleId, type: 'task.completed', subjectId: a.id, actorId: event.actorId }
        : cancelledEvent(a.id),
    ),
  ]);
  return ancestors;
}

/** Walks up from `parentId` while each parent finishes: no child left open. */
async function finishAncestors(trx: Transaction<Database>, parentId: string | null) {
  const finished: { id: string; status: 'done' | 'cancelled' }[] = [];
  while (parentId) {
    // Lock the parent in its own statement first: a sibling finishing concurrently holds this lock
    // until it commits, so the check below (a new statement, a new snapshot) sees its child finished.
    // NO KEY UPDATE, like the status update it guards: it must not wait for the key-share locks the
    // children's foreign-key checks take on their parent (a transaction that updates a task twice
    // holds one), which a sibling's transaction may hold while it waits for a task this one holds.
    await sql`SELECT 1 FROM tasks WHERE id = ${parentId}::uuid FOR NO KEY UPDATE`.execute(trx);
    const parent = await sql<{ id: string; parent_id: string | null; status: 'done' | 'cancelled' }>`
      UPDATE tasks p
      SET status = CASE WHEN EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = p.id AND c.status = 'done') THEN 'done' ELSE 'cancelled' END
      WHERE p.id = ${parentId}::uuid AND p.status = 'open'
        AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = p.id AND c.status = 'open')
      RETURNING p.id, p.parent_id, p.status`.execute(trx);
    const next = parent.rows[0];
    if (!next) break;
    finished.push({ id: next.id, status: next.status });
    parentId = next.parent_id;
  }
  return finished;
}

/** Tasks that stopped being open no longer block the tasks depending on them. */
async function unblockDependents(trx: Transaction<Database>, finished: string[]) {
  if (finished.length === 0) return;
  const freed = await sql<{ id: string; blocking_deps: number }>`
    UPDATE tasks t SET blocking_deps = t.blocking_deps - x.n
    FROM (SELECT task_id, count(*)::int AS n FROM task_dependencies WHERE depends_on_id = ANY(${finished}::uuid[]) GROUP BY task_id) x
    WHERE t.id = x.task_id
    RETURNING t.id, t.blocking_deps`.execute(trx);
  // A dependent waiting for nothing more frees its subtree too.
  await shiftBlockedAncestors(
    trx,
    freed.rows.filter((r) => r.blocking_deps === 0).map((r) => r.id),
    -1,
  );
}
