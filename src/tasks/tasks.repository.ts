import { sql, type Transaction } from 'kysely';
import type { Database, TaskStatus } from '../infra/database-schema.js';
import type { Executor } from '../infra/postgres.js';
import type { FlatTask } from './task-tree.js';
import { applyCommitMark } from '../events/commit-marks.js';
import { callerMembershipOn } from '../circles/circles.repository.js';
import { compiledQuery, compiledQueryShapes } from '../infra/compiled-queries.js';

export const TASK_COLUMNS = [
  'tasks.id',
  'tasks.project_id',
  'tasks.parent_id',
  'tasks.title',
  'tasks.description',
  'tasks.weight',
  'tasks.skills',
  'tasks.slots',
  'tasks.required_accepts',
  'tasks.priority',
  'tasks.status',
  'tasks.is_leaf',
  'tasks.blocking_deps',
  'tasks.blocked_ancestors',
  'tasks.live_claims',
  'tasks.accepted_count',
  'tasks.created_at',
  'tasks.seq',
] as const;

export type TaskRow = {
  id: string;
  project_id: string;
  parent_id: string | null;
  title: string;
  description: string;
  weight: number;
  skills: string[];
  slots: number;
  required_accepts: number;
  priority: number;
  status: TaskStatus;
  is_leaf: boolean;
  blocking_deps: number;
  blocked_ancestors: number;
  live_claims: number;
  accepted_count: number;
  created_at: Date;
  seq: number;
};

const dependsOnIds = sql<
  string[]
>`ARRAY(SELECT d.depends_on_id FROM task_dependencies d WHERE d.task_id = tasks.id ORDER BY d.depends_on_id)`;

/**
 * Inserts a whole validated forest in three set-based statements (tasks, dependencies, events),
 * whatever its size: the rows travel as one JSON parameter rather than thousands of bind values.
 */
export async function insertTaskForest(
  trx: Transaction<Database>,
  circleId: string,
  projectId: string,
  actorId: string,
  tasks: FlatTask[],
  existingFinished: Set<string>,
  under: { blocking_deps: number; blocked_ancestors: number } | null,
) {
  // Parents come before their children in `tasks`: each task's blocked ancestors are its parent's,
  // plus the parent itself while the parent waits for a dependency. The forest's roots hang from
  // `under` (an existing task) or from the project.
  const placed = new Map<string, { blocking_deps: number; blocked_ancestors: number }>();
  const rows = tasks.map((t) => {
    const parent = (t.parentId ? placed.get(t.parentId) : undefined) ??
      under ?? { blocking_deps: 0, blocked_ancestors: 0 };
    const row = {
      id: t.id,
      parent_id: t.parentId,
      title: t.title,
      description: t.description,
      weight: t.weight,
      skills: t.skills,
      slots: t.slots,
      required_accepts: t.requiredAccepts,
      priority: t.priority,
      depth: t.depth,
      is_leaf: t.isLeaf,
      blocking_deps: t.dependsOnNew.length + t.dependsOnExisting.filter((id) => !existingFinished.has(id)).length,
      blocked_ancestors: parent.blocked_ancestors + (parent.blocking_deps > 0 ? 1 : 0),
    };
    placed.set(t.id, row);
    return row;
  });
  await sql`
    INSERT INTO tasks (id, circle_id, project_id, parent_id, title, description, weight, skills, slots, required_accepts, priority, depth, is_leaf, blocking_deps, blocked_ancestors)
    SELECT r.id, ${circleId}::uuid, ${projectId}::uuid, r.parent_id, r.title, r.description, r.weight, r.skills, r.slots, r.required_accepts, r.priority, r.depth, r.is_leaf, r.blocking_deps, r.blocked_ancestors
    FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(id uuid, parent_id uuid, title text, description text, weight int, skills text[], slots int,
      required_accepts int, priority int, depth int, is_leaf boolean, blocking_deps int, blocked_ancestors int)
    ORDER BY r.depth`.execute(trx);
  const deps = tasks.flatMap((t) =>
    [...t.dependsOnNew, ...t.dependsOnExisting].map((d) => ({ task_id: t.id, depends_on_id: d })),
  );
  if (deps.length) {
    await sql`
      INSERT INTO task_dependencies (task_id, depends_on_id)
      SELECT d.task_id, d.depends_on_id FROM jsonb_to_recordset(${JSON.stringify(deps)}::jsonb) AS d(task_id uuid, depends_on_id uuid)`.execute(
      trx,
    );
  }
  await sql`
    INSERT INTO events (circle_id, type, subject_id, actor_id, payload)
    SELECT ${circleId}::uuid, 'task.created', id, ${actorId}::uuid, jsonb_build_object('projectId', ${projectId}::text)
    FROM unnest(${tasks.map((t) => t.id)}::uuid[]) AS id`.execute(trx);
  await applyCommitMark(trx);
}

export async function findTasksByIds(db: Executor, ids: string[]) {
  if (ids.length === 0) return [];
  return db
    .selectFrom('tasks')
    .select(TASK_COLUMNS)
    .select(dependsOnIds.as('depends_on'))
    .where('id', 'in', ids)
    .orderBy('seq')
    .execute();
}

/**
 * The statuses of existing tasks that new tasks will depend on, share-locked until the insert
 * commits. Completing a task updates its row, so a completion running at the same time either
 * commits first (and the status read here is 'done') or waits for the new dependency rows and then
 * unblocks them. Without the lock, a dependency finishing in between left the new task blocked
 * forever.
 */
/** How many tasks the project holds, whatever their status. */
export async function countProjectTasks(trx: Transaction<Database>, projectId: string): Promise<number> {
  const row = await trx
    .selectFrom('tasks')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('project_id', '=', projectId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function findProjectTaskStatuses(trx: Transaction<Database>, projectId: string, ids: string[]) {
  if (ids.length === 0) return [];
  return trx
    .selectFrom('tasks')
    .select(['id', 'status'])
    .where('project_id', '=', projectId)
    .where('id', 'in', ids)
    .orderBy('id')
    .forShare()
    .execute();
}

export async function lockTask(trx: Transaction<Database>, taskId: string) {
  return trx
    .selectFrom('tasks')
    .select(TASK_COLUMNS)
    .select('depth')
    .where('id', '=', taskId)
    .forUpdate()
    .executeTakeFirst();
}

export async function markParent(trx: Transaction<Database>, taskId: string): Promise<void> {
  await trx.updateTable('tasks').set({ is_leaf: false }).where('id', '=', taskId).execute();
}

const taskWithRole = compiledQuery((db, a: { taskId: string; userId: string }) =>
  db
    .selectFrom('tasks')
    .innerJoin('projects', 'projects.id', 'tasks.project_id')
    .leftJoin('memberships', (j) => j.on(callerMembershipOn('tasks.circle_id', a.userId)))
    .select(TASK_COLUMNS)
    .select([dependsOnIds.as('depends_on'), 'tasks.circle_id', 'projects.status as project_status', 'memberships.role'])
    .where('tasks.id', '=', a.taskId),
);

/** A task's weight: accepted work on it earns weight x score points. */
export async function findTaskWeight(db: Executor, taskId: string): Promise<number> {
  const task = await db.selectFrom('tasks').select('weight').where('id', '=', taskId).executeTakeFirstOrThrow();
  return task.weight;
}

/** A task with its circle, project status and the caller's role (null when not a member). */
export async function findTaskWithRole(db: Executor, taskId: string, userId: string) {
  return (await taskWithRole.execute(db, { taskId, userId })).rows[0];
}

/** The fields an owner may change on a task after posting, as columns. */
export type TaskChanges = Partial<
  Pick<TaskRow, 'title' | 'description' | 'weight' | 'skills' | 'slots' | 'required_accepts' | 'priority'>
>;

/**
 * Applies changes to a task the caller has locked. Required accepts lowered to or below the accepts
 * already counted make an open task done (the caller rolls that up, as after an accept).
 * Returns whether the task became done, and its parent.
 */
export async function updateTask(trx: Transaction<Database>, taskId: string, changes: TaskChanges) {
  let q = trx.updateTable('tasks').set(changes).where('id', '=', taskId);
  if (changes.required_accepts !== undefined)
    q = q.set({
      status: sql<TaskStatus>`CASE WHEN status = 'open' AND accepted_count >= ${changes.required_accepts}::int THEN 'done' ELSE status END`,
    });
  return q
    .returning(['parent_id', sql<boolean>`status = 'done' AND accepted_count >= required_accepts`.as('done')])
    .executeTakeFirstOrThrow();
}

// A task and every task below it, at any depth (the root at depth 0).
const subtree = (rootId: string) => sql`
  WITH RECURSIVE sub AS (
    SELECT id, 0 AS depth FROM tasks WHERE id = ${rootId}::uuid
    UNION ALL
    SELECT c.id, sub.depth + 1 FROM tasks c JOIN sub ON c.parent_id = sub.id
  )`;

/** Whether any task of a task's subtree (itself included) has a live claim (active or submitted). */
export async function subtreeHasLiveClaims(trx: Transaction<Database>, rootId: string): Promise<boolean> {
  const result = await sql<{ held: boolean }>`
    ${subtree(rootId)}
    SELECT EXISTS (SELECT 1 FROM sub JOIN tasks t ON t.id = sub.id WHERE t.live_claims > 0) AS held`.execute(trx);
  return result.rows[0]?.held ?? false;
}

/** The open tasks of a task's subtree (itself included), read without locks. */
export async function openSubtreeIds(trx: Transaction<Database>, rootId: string): Promise<string[]> {
  const result = await sql<{ id: string }>`
    ${subtree(rootId)}
    SELECT t.id FROM tasks t JOIN sub ON sub.id = t.id WHERE t.status = 'open' ORDER BY t.id`.execute(trx);
  return result.rows.map((r) => r.id);
}

/**
 * Cancels a task and every open task below it. The subtree is read again by this statement, so a
 * sub-task added just before (its parent's lock released on commit) is cancelled with the rest.
 * Returns the cancelled ids; the task itself is among them only if it was still open.
 */
export async function cancelOpenSubtree(trx: Transaction<Database>, rootId: string): Promise<string[]> {
  // Locked deepest first, then by id, before the update: the order everything else that locks
  // several tasks of a tree takes them in (a completion or a cancel locks its task, then the
  // ancestors upward). Top-down, this cancel and one of a task below it, each holding the task the
  // other wanted next, would deadlock. NO KEY UPDATE, as the update itself: it leaves alone the
  // key-share locks foreign-key checks of the children take.
  await sql`
    ${subtree(rootId)}
    SELECT t.id FROM tasks t JOIN sub ON sub.id = t.id WHERE t.status = 'open'
    ORDER BY sub.depth DESC, t.id
    FOR NO KEY UPDATE OF t`.execute(trx);
  const result = await sql<{ id: string }>`
    ${subtree(rootId)}
    UPDATE tasks t SET status = 'cancelled' FROM sub WHERE t.id = sub.id AND t.status = 'open'
    RETURNING t.id`.execute(trx);
  return result.rows.map((r) => r.id);
}

/** Every task of a project (with its parent and title) and every dependency edge between them. */
export async function projectTaskGraph(trx: Transaction<Database>, projectId: string) {
  const [tasks, dependencies] = await Promise.all([
    trx
      .selectFrom('tasks')
      .select(['id', 'parent_id as parentId', 'title'])
      .where('project_id', '=', projectId)
      .execute(),
    trx
      .selectFrom('task_dependencies')
      .innerJoin('tasks', 'tasks.id', 'task_dependencies.task_id')
      .select(['task_dependencies.task_id as taskId', 'task_dependencies.depends_on_id as dependsOnId'])
      .where('tasks.project_id', '=', projectId)
      .execute(),
  ]);
  return { tasks, dependencies };
}

/** A task's current dependencies. */
export async function dependencyIds(trx: Transaction<Database>, taskId: string): Promise<string[]> {
  const rows = await trx
    .selectFrom('task_dependencies')
    .select('depends_on_id')
    .where('task_id', '=', taskId)
    .orderBy('depends_on_id')
    .execute();
  return rows.map((r) => r.depends_on_id);
}

/**
 * Replaces a task's dependencies and recounts what blocks it (dependencies still open). The caller
 * holds a share lock on every old and new dependency and the task's own row lock, so no dependency
 * finishes between the count and the commit, and one finishing after it sees the new rows.
 */
export async function replaceDependencies(trx: Transaction<Database>, taskId: string, dependsOn: string[]) {
  await trx.deleteFrom('task_dependencies').where('task_id', '=', taskId).execute();
  if (dependsOn.length)
    await trx
      .insertInto('task_dependencies')
      .values(dependsOn.map((id) => ({ task_id: taskId, depends_on_id: id })))
      .execute();
  const counted = await sql<{ before: number; after: number }>`
    UPDATE tasks t SET blocking_deps = (
      SELECT count(*)::int FROM task_dependencies d JOIN tasks dep ON dep.id = d.depends_on_id
      WHERE d.task_id = ${taskId}::uuid AND dep.status = 'open')
    FROM tasks prior
    WHERE t.id = ${taskId}::uuid AND prior.id = t.id
    RETURNING prior.blocking_deps AS before, t.blocking_deps AS after`.execute(trx);
  const { before, after } = counted.rows[0] ?? { before: 0, after: 0 };
  // Its subtree waits with it, or is free with it.
  if (before > 0 !== after > 0) await shiftBlockedAncestors(trx, [taskId], after > 0 ? 1 : -1);
}

/**
 * Tasks that just became blocked (`delta` 1) or unblocked (-1): every task below each of them
 * counts one blocked ancestor more or fewer. Locked deepest first, then by id, the order a cancel
 * locks a subtree in, before the update.
 */
export async function shiftBlockedAncestors(trx: Transaction<Database>, taskIds: string[], delta: 1 | -1) {
  if (taskIds.length === 0) return;
  // One row per path from a shifted task down: a task below two of them counts both.
  const below = sql`
    WITH RECURSIVE below AS (
      SELECT c.id, c.depth FROM tasks c WHERE c.parent_id = ANY(${taskIds}::uuid[])
      UNION ALL
      SELECT c.id, c.depth FROM tasks c JOIN below ON c.parent_id = below.id
    )`;
  await sql`
    ${below}
    SELECT t.id FROM tasks t WHERE t.id IN (SELECT id FROM below)
    ORDER BY t.depth DESC, t.id
    FOR NO KEY UPDATE OF t`.execute(trx);
  await sql`
    ${below}
    UPDATE tasks t SET blocked_ancestors = t.blocked_ancestors + ${delta}::int * x.n
    FROM (SELECT id, count(*)::int AS n FROM below GROUP BY id) x
    WHERE t.id = x.id`.execute(trx);
}

export interface TaskFilters {
  status?: TaskStatus;
  skill?: string;
  claimable?: boolean;
  parentId?: string;
}

type TaskListArgs = {
  projectId: string;
  status?: TaskStatus;
  skill?: string;
  parentId?: string;
  afterPriority?: number;
  afterSeq?: number;
  limit: number;
};

const taskList = compiledQueryShapes(
  (
    db,
    a: TaskListArgs,
    shape: { status: boolean; skill: boolean; parentId: boolean; claimable: boolean; after: boolean },
  ) => {
    // While the query is built every argument is a placeholder, there whatever the shape; the shape
    // flags say which ones the statement uses.
    const given = a as Required<TaskListArgs>;
    let q = db
      .selectFrom('tasks')
      .select(TASK_COLUMNS)
      .select(dependsOnIds.as('depends_on'))
      .where('project_id', '=', a.projectId);
    if (shape.status) q = q.where('status', '=', given.status);
    if (shape.skill) q = q.where(sql<boolean>`skills @> ARRAY[${a.skill}]::text[]`);
    if (shape.parentId) q = q.where('parent_id', '=', given.parentId);
    if (shape.claimable) {
      q = q
        .where('status', '=', 'open')
        .where('is_leaf', '=', true)
        .where('blocking_deps', '=', 0)
        .where('blocked_ancestors', '=', 0)
        .where(sql<boolean>`live_claims < slots`);
      if (shape.after)
        q = q.where(
          sql<boolean>`(priority < ${a.afterPriority}::int OR (priority = ${a.afterPriority}::int AND seq > ${a.afterSeq}::bigint))`,
        );
      return q.orderBy('priority', 'desc').orderBy('seq').limit(a.limit);
    }
    if (shape.after) q = q.where('seq', '>', given.afterSeq);
    return q.orderBy('seq').limit(a.limit);
  },
);

/**
 * One page of a project's tasks (one row more than the page, to tell whether another follows).
 * With claimable=true the order and predicate match the partial index tasks_claimable_idx, so the
 * board is an index range scan however many tasks there are. `after` is the last row's sort key:
 * [priority, seq] on the claimable board, [seq] otherwise.
 */
export async function listTasks(
  db: Executor,
  projectId: string,
  filters: TaskFilters,
  limit: number,
  after: number[] | null,
) {
  const claimable = !!filters.claimable;
  const statement = taskList({
    status: !!filters.status,
    skill: !!filters.skill,
    parentId: !!filters.parentId,
    claimable,
    after: !!after,
  });
  const result = await statement.execute(db, {
    projectId,
    status: filters.status,
    skill: filters.skill?.toLowerCase(),
    parentId: filters.parentId,
    limit: limit + 1,
    afterPriority: claimable ? after?.[0] : undefined,
    afterSeq: after?.[claimable ? 1 : 0],
  });
  return result.rows;
}

type MemberBoardArgs = {
  userId: string;
  skill?: string;
  afterPriority?: number;
  afterSeq?: number;
  limit: number;
};

const memberBoard = compiledQueryShapes((_db, a: MemberBoardArgs, shape: { skill: boolean; after: boolean }) => {
  const columns = sql.join(TASK_COLUMNS.map((column) => sql.ref(column)));
  return sql<TaskRow & { depends_on: string[] }>`
    SELECT page.*, ARRAY(SELECT d.depends_on_id FROM task_dependencies d WHERE d.task_id = page.id ORDER BY d.depends_on_id) AS depends_on
    FROM (
      SELECT mine.* FROM (
        SELECT p.id FROM memberships m JOIN projects p ON p.circle_id = m.circle_id AND p.status = 'open'
        WHERE m.user_id = ${a.userId}::uuid AND m.left_at IS NULL
      ) open_project
      CROSS JOIN LATERAL (
        SELECT ${columns} FROM tasks
        WHERE tasks.project_id = open_project.id
          AND tasks.status = 'open' AND tasks.is_leaf AND tasks.blocking_deps = 0 AND tasks.blocked_ancestors = 0
          AND tasks.live_claims < tasks.slots
          -- coalesce(..., false) filters exactly as the bare condition would, but hides it from
          -- the skills GIN index and from the estimate, so each project's claimable index is walked
          -- in order to its first page instead of every task with the skill being read and sorted.
          ${shape.skill ? sql`AND coalesce(tasks.skills @> ARRAY[${a.skill}]::text[], false)` : sql``}
          ${shape.after ? sql`AND (tasks.priority < ${a.afterPriority}::int OR (tasks.priority = ${a.afterPriority}::int AND tasks.seq > ${a.afterSeq}::bigint))` : sql``}
          AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.task_id = tasks.id AND c.user_id = ${a.userId}::uuid AND c.status IN ('active', 'submitted', 'accepted'))
        ORDER BY tasks.priority DESC, tasks.seq
        LIMIT ${a.limit}
      ) mine
      ORDER BY mine.priority DESC, mine.seq
      LIMIT ${a.limit}
    ) page
    ORDER BY page.priority DESC, page.seq`;
});

/**
 * One page of the tasks a member could claim now across every circle they belong to, in
 * claims/next order (priority first, then oldest), leaving out tasks they hold or contributed to.
 * Each open project's claimable index (tasks_claimable_idx) is walked for at most one page, then
 * the per-project pages are merged: the cost grows with the member's open projects and the page
 * size, not with the number of open tasks. `after` is the last row's [priority, seq] (seq is
 * unique across projects). One row more than the page is read, to tell whether another follows.
 */
export async function listClaimableForMember(
  db: Executor,
  userId: string,
  skill: string | undefined,
  limit: number,
  after: number[] | null,
) {
  const result = await memberBoard({ skill: skill !== undefined, after: !!after }).execute(db, {
    userId,
    skill: skill?.toLowerCase(),
    afterPriority: after?.[0],
    afterSeq: after?.[1],
    limit: limit + 1,
  });
  return result.rows;
}
