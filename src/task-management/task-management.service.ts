import type { AppContext } from '../context.js';
import type { Transaction } from 'kysely';
import type { Database, ProjectStatus } from '../infra/database-schema.js';
import { conflict } from '../errors.js';
import { MANAGERS, authorize } from '../circles/access.js';
import { lockMembershipShared } from '../circles/circles.repository.js';
import { recordEvent, recordEvents } from '../events/events.repository.js';
import { assertProjectEditable } from '../projects/project-rules.js';
import { lockProjectShared, lockProjectWithRole } from '../projects/projects.repository.js';
import { lockLiveClaimsOn, revokeLiveClaimsOn } from '../claims/claims.repository.js';
import { claimRevokedEvents } from '../claims/claims.service.js';
import { afterTaskDone, afterTasksCancelled } from '../tasks/task-completion.js';
import { toTaskView } from '../tasks/tasks.service.js';
import * as taskRepo from '../tasks/tasks.repository.js';
import { cancelReason, checkDependencies, planTaskEdit, type TaskEdit } from './task-edit-rules.js';

// Changing a task after posting (owner, admin): editing it, cancelling its open subtree, replacing
// its dependencies. Each runs in one transaction with its outbox events.

/**
 * Reads the task for a manager and locks its project, so the project cannot be settled or cancelled
 * while the task changes (settled and cancelled projects are frozen). `exclusive` serializes the
 * changes to a project's dependency graph, as adding task trees does.
 */
async function authorizeTaskChange(
  trx: Transaction<Database>,
  userId: string,
  taskId: string,
  { exclusive = false }: { exclusive?: boolean } = {},
) {
  const task = authorize(await taskRepo.findTaskWithRole(trx, taskId, userId), 'task', MANAGERS);
  // The role just read was a plain read: it is read again with the membership share-locked, so a
  // demotion or departure in flight is waited for and seen.
  let projectStatus: ProjectStatus;
  if (exclusive) {
    projectStatus = authorize(await lockProjectWithRole(trx, task.project_id, userId), 'task', MANAGERS).status;
  } else {
    projectStatus = await lockProjectShared(trx, task.project_id);
    authorize(await lockMembershipShared(trx, task.circle_id, userId), 'task', MANAGERS);
  }
  assertProjectEditable(projectStatus);
  return { ...task, project_status: projectStatus };
}

/** The task as the response shows it, read in the transaction that changed it. */
async function taskView(trx: Transaction<Database>, taskId: string, projectStatus: ProjectStatus) {
  const [row] = await taskRepo.findTasksByIds(trx, [taskId]);
  if (!row) throw new Error(`task ${taskId} vanished inside its own transaction`);
  return toTaskView(row, projectStatus);
}

export async function editTask(ctx: AppContext, userId: string, taskId: string, edit: TaskEdit) {
  return ctx.db.transaction().execute(async (trx) => {
    const { circle_id: circleId, project_status: projectStatus } = await authorizeTaskChange(trx, userId, taskId);
    const task = await taskRepo.lockTask(trx, taskId);
    if (!task) throw new Error(`task ${taskId} vanished under its project's lock`);
    const changes = planTaskEdit({ status: task.status, isLeaf: task.is_leaf, liveClaims: task.live_claims }, edit);
    const changed = Object.entries(changes).filter(
      ([column, value]) => JSON.stringify(task[column as keyof typeof changes]) !== JSON.stringify(value),
    );
    if (changed.length) {
      const updated = await taskRepo.updateTask(trx, taskId, Object.fromEntries(changed));
      await recordEvent(trx, {
        circleId,
        type: 'task.updated',
        subjectId: taskId,
        actorId: userId,
        payload: {
          changes: Object.fromEntries(
            changed.map(([column, to]) => [camel(column), { from: task[column as keyof typeof changes], to }]),
          ),
        },
      });
      if (updated.done) await afterTaskDone(trx, { id: taskId, parentId: updated.parent_id }, circleId);
    }
    return taskView(trx, taskId, projectStatus);
  });
}

const camel = (column: string) => column.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());

/**
 * Cancels a task and its open subtree: every live claim in it is revoked with the reason (its slot
 * freed once), its parents are re-evaluated and its dependents unblocked. Done tasks inside the
 * subtree and accepted contributions stay as they are.
 */
export async function cancelTask(ctx: AppContext, userId: string, taskId: string, rawReason: string) {
  const reason = cancelReason(rawReason);
  return ctx.db.transaction().execute(async (trx) => {
    const task = await authorizeTaskChange(trx, userId, taskId);
    const notOpen = (status: string) =>
      conflict('task_not_open', `The task is ${status}; only open tasks can be cancelled.`);
    if (task.status !== 'open') throw notOpen(task.status);
    // Claims before tasks: the order reviews and revocations lock them in.
    await lockLiveClaimsOn(trx, await taskRepo.openSubtreeIds(trx, taskId));
    const cancelled = await taskRepo.cancelOpenSubtree(trx, taskId);
    // Finished by someone else between the read and the locks.
    if (!cancelled.includes(taskId)) throw notOpen('no longer open');
    const revoked = await revokeLiveClaimsOn(trx, cancelled, reason);
    await recordEvents(trx, claimRevokedEvents(revoked, { actorId: userId, reason }));
    await afterTasksCancelled(trx, cancelled, task.parent_id, { circleId: task.circle_id, actorId: userId, reason });
    return taskView(trx, taskId, task.project_status);
  });
}

/**
 * Replaces a task's dependencies. Every old and new dependency is share-locked before the task
 * itself (the order completion locks them in), so one finishing meanwhile either committed before
 * the count or waits and then sees the new edges: its unblocking is never lost.
 */
export async function replaceDependencies(ctx: AppContext, userId: string, taskId: string, dependsOn: string[]) {
  return ctx.db.transaction().execute(async (trx) => {
    const task = await authorizeTaskChange(trx, userId, taskId, { exclusive: true });
    const graph = await taskRepo.projectTaskGraph(trx, task.project_id);
    const titles = new Map(graph.tasks.map((t) => [t.id, t.title]));
    const ids = checkDependencies(taskId, dependsOn, {
      taskIds: new Set(titles.keys()),
      dependencies: graph.dependencies,
      tree: graph.tasks,
      titleOf: (id) => JSON.stringify(titles.get(id) ?? id),
    });
    const before = await taskRepo.dependencyIds(trx, taskId);
    const statuses = await taskRepo.findProjectTaskStatuses(trx, task.project_id, [...new Set([...before, ...ids])]);
    const locked = await taskRepo.lockTask(trx, taskId);
    if (locked?.status !== 'open')
      throw conflict('task_not_open', `The task is ${locked?.status}; its dependencies can no longer change.`);
    const after = [...ids].sort();
    if (after.join() !== before.join()) {
      await taskRepo.replaceDependencies(trx, taskId, after);
      // Work already under way would be submitted and accepted regardless, finishing the task (or
      // one below it) before what it now waits for: a task claimed, or with claimed tasks below it,
      // cannot be made to wait (as a claimed task cannot be split). Read once the subtree is
      // locked (the blocked count written): a claim committing later sees it blocked.
      const waitsAnew = statuses.some((d) => d.status === 'open' && ids.includes(d.id) && !before.includes(d.id));
      if (waitsAnew && (await taskRepo.subtreeHasLiveClaims(trx, taskId)))
        throw conflict(
          'task_has_claims',
          'This task, or a task below it, has been claimed; it cannot be made to wait for an open task now. Release or revoke those claims first.',
        );
      await recordEvent(trx, {
        circleId: task.circle_id,
        type: 'task.updated',
        subjectId: taskId,
        actorId: userId,
        payload: { changes: { dependsOn: { from: before, to: after } } },
      });
    }
    return taskView(trx, taskId, task.project_status);
  });
}
