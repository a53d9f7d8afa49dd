import type { AppContext } from '../context.js';
import type { ProjectStatus } from '../infra/database-schema.js';
import { decodeCursor, pageOf } from '../infra/cursors.js';
import { recordEvent } from '../events/events.repository.js';
import { MANAGERS, authorize, requireMember, requireRole } from '../circles/access.js';
import { addTaskForest } from '../tasks/tasks.service.js';
import type { TaskNodeInput } from '../tasks/task-tree.js';
import { assertTransition } from './project-rules.js';
import * as repo from './projects.repository.js';

export const DEFAULT_LEASE_SECONDS = 86400;
export const DEFAULT_REVIEW_WINDOW_SECONDS = 3 * 86400;

type Progress = Awaited<ReturnType<typeof repo.projectProgress>>;

export const toProjectView = (p: repo.ProjectRow, progress?: Progress) => ({
  id: p.id,
  circleId: p.circle_id,
  title: p.title,
  description: p.description,
  status: p.status,
  rewardPool: { amount: p.reward_amount, unit: p.reward_unit },
  leaseSeconds: p.lease_seconds,
  reviewWindowSeconds: p.review_window_seconds,
  createdBy: p.created_by,
  createdAt: p.created_at,
  updatedAt: p.updated_at,
  ...(progress ? { progress } : {}),
});

export async function createProject(
  ctx: AppContext,
  userId: string,
  circleId: string,
  input: {
    title: string;
    description?: string;
    status?: 'draft' | 'open';
    rewardPool?: { amount: number; unit: string };
    leaseSeconds?: number;
    reviewWindowSeconds?: number;
    tasks?: TaskNodeInput[];
  },
) {
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  return ctx.db.transaction().execute(async (trx) => {
    await requireRole(trx, circleId, userId, MANAGERS);
    const project = await repo.insertProject(trx, {
      circleId,
      title: input.title,
      description: input.description ?? '',
      status: input.status ?? 'open',
      rewardAmount: input.rewardPool?.amount ?? 0,
      rewardUnit: input.rewardPool?.unit ?? 'points',
      leaseSeconds: input.leaseSeconds ?? DEFAULT_LEASE_SECONDS,
      reviewWindowSeconds: input.reviewWindowSeconds ?? DEFAULT_REVIEW_WINDOW_SECONDS,
      createdBy: userId,
    });
    await recordEvent(trx, { circleId, type: 'project.created', subjectId: project.id, actorId: userId });
    if (input.tasks?.length) await addTaskForest(trx, project, userId, input.tasks);
    return toProjectView(project, await repo.projectProgress(trx, project.id));
  });
}

export async function listProjects(ctx: AppContext, userId: string, circleId: string, limit: number, cursor?: string) {
  await requireMember(ctx.db, circleId, userId);
  const after = decodeCursor(cursor, ['number', 'uuid']) as [number, string] | null;
  const rows = await repo.listProjects(ctx.db, circleId, limit, after);
  const page = pageOf(rows, limit, (r) => [r.cursor_ts, r.id]);
  return { items: page.items.map((p) => toProjectView(p)), nextCursor: page.nextCursor };
}

export async function getProject(ctx: AppContext, userId: string, projectId: string) {
  const project = authorize(await repo.findProjectWithRole(ctx.db, projectId, userId), 'project');
  return toProjectView(project, await repo.projectProgress(ctx.db, projectId));
}

export async function updateProject(
  ctx: AppContext,
  userId: string,
  projectId: string,
  input: {
    title?: string;
    description?: string;
    status?: ProjectStatus;
    rewardPool?: { amount: number; unit: string };
    leaseSeconds?: number;
    reviewWindowSeconds?: number;
  },
) {
  return ctx.db.transaction().execute(async (trx) => {
    const project = authorize(await repo.lockProjectWithRole(trx, projectId, userId), 'project', MANAGERS);
    const current = project;
    assertTransition(current.status, input.status ?? current.status);
    const asked = {
      ...(input.title !== undefined && { title: input.title }),
      ...(input.description !== undefined && { description: input.description }),
      ...(input.status !== undefined && { status: input.status }),
      ...(input.rewardPool !== undefined && {
        reward_amount: input.rewardPool.amount,
        reward_unit: input.rewardPool.unit,
      }),
      ...(input.leaseSeconds !== undefined && { lease_seconds: input.leaseSeconds }),
      ...(input.reviewWindowSeconds !== undefined && { review_window_seconds: input.reviewWindowSeconds }),
    };
    // A PATCH that sets what is already there changes nothing, so it writes and announces nothing
    // (clients that send the whole form back on save would otherwise flood the feed and webhooks).
    const changes = Object.fromEntries(
      Object.entries(asked).filter(([column, value]) => current[column as keyof typeof asked] !== value),
    ) as typeof asked;
    if (Object.keys(changes).length === 0) return toProjectView(current, await repo.projectProgress(trx, projectId));
    const updated = await repo.updateProject(trx, projectId, changes);
    const type =
      input.status && input.status !== current.status
        ? `project.${input.status === 'open' ? 'opened' : input.status}`
        : 'project.updated';
    await recordEvent(trx, {
      circleId: current.circle_id,
      type,
      subjectId: projectId,
      actorId: userId,
      payload: { from: current.status, to: updated.status },
    });
    return toProjectView(updated, await repo.projectProgress(trx, projectId));
  });
}
