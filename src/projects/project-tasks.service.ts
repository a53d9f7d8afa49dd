import type { FastifyInstance } from 'fastify';
import { decodeCursor, pageOf } from '../http/pagination.js';
import { MANAGERS, assertRole } from '../circles/access.js';
import { addTaskForest, toTaskView } from '../tasks/tasks.service.js';
import * as taskRepo from '../tasks/tasks.repository.js';
import type { TaskNodeInput } from '../tasks/task-tree.js';
import { findProjectWithRole } from './projects.repository.js';
import { assertProjectEditable } from './project-rules.js';

// A project's tasks: adding task trees to it and its task board. They live with the project, which
// decides who may see and change its tasks and when; src/tasks knows tasks, not projects.

export async function createTasks(
  app: FastifyInstance,
  userId: string,
  projectId: string,
  input: { parentId?: string; tasks: TaskNodeInput[] },
) {
  return app.db.transaction().execute(async (trx) => {
    const project = await findProjectWithRole(trx, projectId, userId, true);
    assertRole(project?.role ?? undefined, 'project', MANAGERS);
    assertProjectEditable(project!.status);
    const ids = await addTaskForest(trx, project!, userId, input.parentId, input.tasks);
    const rows = await taskRepo.findTasksByIds(trx, ids);
    return { items: rows.map((t) => toTaskView(t, project!.status)) };
  });
}

export async function listTasks(
  app: FastifyInstance,
  userId: string,
  projectId: string,
  query: taskRepo.TaskFilters & { limit?: number; cursor?: string },
) {
  const project = await findProjectWithRole(app.db, projectId, userId);
  assertRole(project?.role ?? undefined, 'project');
  const limit = query.limit ?? 50;
  const after = decodeCursor(query.cursor, query.claimable ? ['number', 'number'] : ['number']) as number[] | null;
  const rows = await taskRepo.listTasks(app.db, projectId, query, limit, after);
  const page = pageOf(rows, limit, (t) => (query.claimable ? [t.priority, t.seq] : [t.seq]));
  return { items: page.items.map((t) => toTaskView(t, project!.status)), nextCursor: page.nextCursor };
}
