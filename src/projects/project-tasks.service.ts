import type { AppContext } from '../context.js';
import { decodeCursor, pageOf } from '../infra/cursors.js';
import { MANAGERS, authorize } from '../circles/access.js';
import { addTaskForest, toTaskView } from '../tasks/tasks.service.js';
import * as taskRepo from '../tasks/tasks.repository.js';
import type { TaskNodeInput } from '../tasks/task-tree.js';
import { findProjectWithRole, lockProjectWithRole } from './projects.repository.js';
import { assertProjectEditable } from './project-rules.js';

// A project's tasks: adding task trees to it and its task board. They live with the project, which
// decides who may see and change its tasks and when; src/tasks knows tasks, not projects.

export async function createTasks(
  ctx: AppContext,
  userId: string,
  projectId: string,
  input: { parentId?: string; tasks: TaskNodeInput[] },
) {
  return ctx.db.transaction().execute(async (trx) => {
    const project = authorize(await lockProjectWithRole(trx, projectId, userId), 'project', MANAGERS);
    assertProjectEditable(project.status);
    const ids = await addTaskForest(trx, project, userId, input.tasks, { parentId: input.parentId });
    const rows = await taskRepo.findTasksByIds(trx, ids);
    return { items: rows.map((t) => toTaskView(t, project.status)) };
  });
}

export async function listTasks(
  ctx: AppContext,
  userId: string,
  projectId: string,
  query: taskRepo.TaskFilters & { limit?: number; cursor?: string },
) {
  const project = authorize(await findProjectWithRole(ctx.db, projectId, userId), 'project');
  const limit = query.limit ?? 50;
  const after = decodeCursor(query.cursor, query.claimable ? ['int32', 'number'] : ['number']) as number[] | null;
  const rows = await taskRepo.listTasks(ctx.db, projectId, query, limit, after);
  const page = pageOf(rows, limit, (t) => (query.claimable ? [t.priority, t.seq] : [t.seq]));
  return { items: page.items.map((t) => toTaskView(t, project.status)), nextCursor: page.nextCursor };
}
