import type { AppContext } from '../context.js';
import { invalid, conflict, forbidden } from '../errors.js';
import { decodeCursor, pageOf } from '../infra/cursors.js';
import { EXPORT_PAGE_SIZE, walkKeyset } from '../infra/keyset-walk.js';
import { currentSnapshot, parseSnapshot } from '../infra/snapshots.js';
import { recordEvent } from '../events/events.repository.js';
import { MANAGERS, authorize } from '../circles/access.js';
import { findMembership } from '../circles/circles.repository.js';
import { findProjectWithRole, lockProjectWithRole } from '../projects/projects.repository.js';
import { assertProjectEditable } from '../projects/project-rules.js';
import * as repo from './contributions.repository.js';

export const toContributionView = (c: repo.ContributionRow) => ({
  id: String(c.id),
  circleId: c.circle_id,
  projectId: c.project_id,
  userId: c.user_id,
  source: c.source,
  taskId: c.task_id,
  claimId: c.claim_id,
  points: c.points,
  reason: c.reason,
  createdBy: c.created_by,
  createdAt: c.created_at,
});

export async function listProjectContributions(
  ctx: AppContext,
  userId: string,
  projectId: string,
  limit: number,
  cursor?: string,
) {
  authorize(await findProjectWithRole(ctx.db, projectId, userId), 'project');
  const key = decodeCursor(cursor, ['string', 'number', 'uuid']) as [string, number, string] | null;
  const snapshot = key ? parseSnapshot(key[0]) : await currentSnapshot(ctx.db);
  const rows = await repo.projectTotals(ctx.db, projectId, snapshot, limit, key ? [key[1], key[2]] : null);
  const page = pageOf(rows, limit, (r) => [snapshot, r.points, r.user_id]);
  return {
    items: page.items.map((r) => ({
      userId: r.user_id,
      handle: r.handle,
      points: r.points,
      acceptedTasks: r.accepted_tasks,
    })),
    nextCursor: page.nextCursor,
  };
}

/**
 * Every contribution row of a project, oldest first, for a CSV export: the caller's access is
 * checked here, before anything is sent; the rows are then read page by page as the client takes
 * them, exactly those committed when the export began (its snapshot), each once.
 */
export async function exportProjectContributions(ctx: AppContext, userId: string, projectId: string) {
  const project = authorize(await findProjectWithRole(ctx.db, projectId, userId), 'project');
  const snapshot = await currentSnapshot(ctx.db);
  const pages = walkKeyset(
    'project-contributions',
    EXPORT_PAGE_SIZE,
    (after: number | null, limit) => repo.projectContributionsPage(ctx.db, projectId, { after, snapshot }, limit),
    (row) => Number(row.id),
  );
  async function* rows() {
    for await (const page of pages)
      yield page.map((r) => ({
        createdAt: r.created_at,
        handle: r.handle,
        displayName: r.display_name,
        source: r.source,
        points: r.points,
        taskTitle: r.task_title,
        reason: r.reason,
      }));
  }
  return { project: { id: project.id, title: project.title }, pages: rows() };
}

/**
 * An owner's or admin's correction to a member's points: a new, compensating ledger row with a
 * reason, never an edit. A member's total in a project can't be pushed below zero, and no manager
 * adjusts their own.
 */
export async function adjustContribution(
  ctx: AppContext,
  actorId: string,
  projectId: string,
  input: { userId: string; points: number; reason: string },
) {
  const reason = input.reason.trim();
  if (!reason)
    throw invalid('reason_required', 'An adjustment needs a reason.', [
      { path: 'body/reason', message: 'must not be blank' },
    ]);
  return ctx.db.transaction().execute(async (trx) => {
    const project = authorize(await lockProjectWithRole(trx, projectId, actorId), 'project', MANAGERS);
    // As nobody reviews their own work: points a manager gives themselves would come out of the
    // pool the other members share. Another owner or admin can make the adjustment.
    if (input.userId === actorId) throw forbidden('Nobody adjusts their own points; another owner or admin can.');
    assertProjectEditable(project.status);
    const member = await findMembership(trx, project.circle_id, input.userId);
    if (!member)
      throw invalid('not_a_member', 'Adjustments are for members of the circle.', [
        { path: 'body/userId', message: 'not a member of this circle' },
      ]);
    await repo.lockMemberProjectPoints(trx, projectId, input.userId);
    const current = await repo.memberProjectPoints(trx, projectId, input.userId);
    if (current + input.points < 0)
      throw conflict(
        'adjustment_below_zero',
        `The member has ${current} points in this project; the adjustment would take them below zero.`,
      );
    const row = await repo.insertContribution(trx, {
      circleId: project.circle_id,
      projectId,
      userId: input.userId,
      source: 'adjustment',
      points: input.points,
      reason,
      createdBy: actorId,
    });
    await recordEvent(trx, {
      circleId: project.circle_id,
      type: 'contribution.recorded',
      subjectId: input.userId,
      actorId,
      payload: { contributionId: row.id, points: input.points, source: 'adjustment', reason },
    });
    return toContributionView(row);
  });
}
