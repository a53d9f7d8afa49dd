import type { AppContext } from '../context.js';
import { decodeCursor, encodeCursor } from '../infra/cursors.js';
import { currentSnapshot, parseSnapshot } from '../infra/snapshots.js';
import { MANAGERS, requireMember } from '../circles/access.js';
import * as repo from './activity.repository.js';
import { summarize } from './summaries.js';

// The activity feed of a circle and a member's inbox: both read the outbox (src/events), newest
// first. The cursor is [snapshot of the first page, id of the last event served]: the walk serves
// exactly the events that had committed when it began, each once, whatever commits meanwhile.

const toEventView = (e: repo.EventRow) => ({
  id: String(e.id),
  type: e.type,
  circleId: e.circle_id,
  occurredAt: e.created_at,
  actor: e.actor_id ? { userId: e.actor_id, handle: e.actor_handle, displayName: e.actor_name } : null,
  subjectId: e.subject_id,
  recipientId: e.recipient_id,
  summary: summarize({
    type: e.type,
    actorHandle: e.actor_handle,
    memberHandle: e.member_handle,
    taskTitle: e.task_title,
    projectTitle: e.project_title,
    payload: e.payload,
  }),
  data: e.payload,
});

export type EventView = ReturnType<typeof toEventView>;

interface PageRequest {
  types?: string;
  limit?: number;
  cursor?: string;
}

async function walk(
  ctx: AppContext,
  request: PageRequest,
  read: (o: {
    types: string[] | null;
    snapshot: string;
    beforeId: number | null;
    limit: number;
  }) => Promise<repo.EventRow[]>,
) {
  const limit = request.limit ?? 50;
  const key = decodeCursor(request.cursor, ['string', 'number']) as [string, number] | null;
  const snapshot = key ? parseSnapshot(key[0]) : await currentSnapshot(ctx.db);
  const types = request.types ? [...new Set(request.types.split(','))] : null;
  const rows = await read({ types, snapshot, beforeId: key ? key[1] : null, limit: limit + 1 });
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items: items.map(toEventView),
    nextCursor: rows.length > limit && last ? encodeCursor([snapshot, last.id]) : null,
  };
}

export async function listCircleEvents(ctx: AppContext, userId: string, circleId: string, request: PageRequest) {
  const role = await requireMember(ctx.db, circleId, userId);
  const management = MANAGERS.includes(role);
  return walk(ctx, request, (o) => repo.circleFeed(ctx.db, circleId, { ...o, management }));
}

export async function listMyEvents(ctx: AppContext, userId: string, request: PageRequest) {
  return walk(ctx, request, (o) => repo.inbox(ctx.db, userId, o));
}
