import type { AppContext } from '../context.js';
import type { Transaction } from 'kysely';
import type { Database, ProjectStatus } from '../infra/database-schema.js';
import { invalid, conflict } from '../errors.js';
import { authorize } from '../circles/access.js';
import { decodeCursor, pageOf } from '../infra/cursors.js';
import { MAX_PROJECT_TASKS, flattenTaskTree, forestCycle, type TaskNodeInput } from './task-tree.js';
import * as repo from './tasks.repository.js';

type TaskWithDeps = repo.TaskRow & { depends_on: string[] };

export function toTaskView(t: TaskWithDeps, projectStatus: ProjectStatus) {
  // Waiting for its own dependencies, or inside the subtree of a task waiting for its own.
  const blocked = t.blocking_deps > 0 || t.blocked_ancestors > 0;
  return {
    id: t.id,
    projectId: t.project_id,
    parentId: t.parent_id,
    title: t.title,
    description: t.description,
    weight: t.weight,
    skills: t.skills,
    slots: t.slots,
    requiredAccepts: t.required_accepts,
    priority: t.priority,
    status: t.status,
    isLeaf: t.is_leaf,
    blocked,
    claimable: projectStatus === 'open' && t.status === 'open' && t.is_leaf && !blocked && t.live_claims < t.slots,
    liveClaims: t.live_claims,
    acceptedCount: t.accepted_count,
    dependsOn: t.depends_on,
    createdAt: t.created_at,
  };
}

/**
 * Validates and inserts task trees inside the caller's transaction (which holds the project row's
 * lock), as roots of the project or under the task `parentId` names. Everything is checked before
 * anything is written, and any error rolls the whole request back: nothing is half-created.
 */
export async function addTaskForest(
  trx: Transaction<Database>,
  project: { id: string; circle_id: string },
  actorId: string,
  nodes: TaskNodeInput[],
  { parentId }: { parentId?: string } = {},
): Promise<string[]> {
  let baseDepth = -1;
  let parent: Awaited<ReturnType<typeof repo.lockTask>>;
  if (parentId) {
    parent = await repo.lockTask(trx, parentId);
    if (!parent || parent.project_id !== project.id)
      throw invalid('invalid_task_tree', 'parentId must name a task of this project.', [
        { path: 'body/parentId', message: 'no such task in this project' },
      ]);
    if (parent.status !== 'open') throw conflict('task_not_open', 'Sub-tasks can only be added under an open task.');
    if (parent.is_leaf && (parent.live_claims > 0 || parent.accepted_count > 0)) {
      throw conflict('task_has_claims', 'This task has been claimed; it cannot be split into sub-tasks now.');
    }
    baseDepth = parent.depth;
  }
  const tree = flattenTaskTree(nodes, baseDepth);
  if (!tree.ok) throw invalid('invalid_task_tree', 'The task tree is invalid; see errors.', tree.errors);
  // The project row is locked by the caller: no other request adds tasks to it meanwhile.
  const held = await repo.countProjectTasks(trx, project.id);
  if (held + tree.tasks.length > MAX_PROJECT_TASKS)
    throw invalid('invalid_task_tree', 'The project would hold too many tasks.', [
      {
        path: 'body/tasks',
        message: `the project holds ${held} tasks; ${tree.tasks.length} more would pass its limit of ${MAX_PROJECT_TASKS}`,
      },
    ]);
  // flattenTaskTree leaves the roots unattached; under a parent they hang from it.
  const tasks = parentId ? tree.tasks.map((t) => (t.parentId === null ? { ...t, parentId } : t)) : tree.tasks;

  const existing = [...new Set(tasks.flatMap((t) => t.dependsOnExisting))];
  const found = await repo.findProjectTaskStatuses(trx, project.id, existing);
  const missing = existing.filter((id) => !found.some((f) => f.id === id));
  if (missing.length) {
    throw invalid(
      'invalid_task_tree',
      'dependsOn names tasks that are not in this project.',
      missing.map((id) => ({ path: 'body/tasks', message: `task ${id} is not a task of this project` })),
    );
  }
  // Under an existing parent, an existing task the new ones depend on may itself wait for that
  // parent. The project row is locked, so the graph read here is the one the tasks join.
  if (parentId && existing.length) {
    const graph = await repo.projectTaskGraph(trx, project.id);
    const cycle = forestCycle(tasks, { dependencies: graph.dependencies, tree: graph.tasks });
    if (cycle) {
      const titles = new Map([...graph.tasks, ...tasks].map((t) => [t.id, t.title]));
      throw invalid('invalid_task_tree', 'The task tree is invalid; see errors.', [
        {
          path: 'body/tasks',
          message: `dependency cycle: ${cycle.map((id) => JSON.stringify(titles.get(id) ?? id)).join(' -> ')}`,
        },
      ]);
    }
  }
  // Only an open dependency blocks: done work is there, cancelled work never will be.
  const finished = new Set(found.filter((f) => f.status !== 'open').map((f) => f.id));
  await repo.insertTaskForest(trx, project.circle_id, project.id, actorId, tasks, finished, parent ?? null);
  if (parentId) await repo.markParent(trx, parentId);
  return tasks.map((t) => t.id);
}

export async function getTask(ctx: AppContext, userId: string, taskId: string) {
  const task = authorize(await repo.findTaskWithRole(ctx.db, taskId, userId), 'task');
  return toTaskView(task, task.project_status);
}

/** GET /v1/me/tasks: what the caller could claim now in all their circles (open projects only). */
export async function listMyClaimableTasks(
  ctx: AppContext,
  userId: string,
  query: { skill?: string; limit?: number; cursor?: string },
) {
  const limit = query.limit ?? 50;
  const after = decodeCursor(query.cursor, ['int32', 'number']) as number[] | null;
  const rows = await repo.listClaimableForMember(ctx.db, userId, query.skill, limit, after);
  const page = pageOf(rows, limit, (t) => [t.priority, t.seq]);
  return { items: page.items.map((t) => toTaskView(t, 'open')), nextCursor: page.nextCursor };
}
