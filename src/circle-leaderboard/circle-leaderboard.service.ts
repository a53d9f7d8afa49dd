import type { AppContext } from '../context.js';
import { invalid } from '../errors.js';
import { decodeCursor, encodeCursor } from '../infra/cursors.js';
import { currentSnapshot, parseSnapshot } from '../infra/snapshots.js';
import { requireMember } from '../circles/access.js';
import * as repo from './circle-leaderboard.repository.js';

export type BoardWindow = '7d' | '30d' | 'all';

const WINDOW_DAYS: Record<BoardWindow, number | null> = { '7d': 7, '30d': 30, all: null };
const DAY_MICROS = 86_400_000_000;

const toItem = (r: repo.BoardRow) => ({
  rank: r.rank,
  userId: r.user_id,
  handle: r.handle,
  displayName: r.display_name,
  points: r.points,
});

/**
 * The circle's points board over a rolling window (7 or 30 days up to now) or all time. The first
 * page fixes what the whole walk counts: the window's start, the members at that instant and the
 * contributions committed by then (the snapshot). The cursor carries those with the position
 * reached, so every later page ranks the same board: no member is served twice or skipped, however
 * many points are earned meanwhile. A fresh walk shows the new standings.
 */
export async function circleLeaderboard(
  ctx: AppContext,
  userId: string,
  circleId: string,
  request: { window?: BoardWindow; me?: boolean; limit?: number; cursor?: string },
) {
  await requireMember(ctx.db, circleId, userId);
  const window = request.window ?? '30d';
  const limit = request.limit ?? 50;
  const key = decodeCursor(request.cursor, ['string', 'number', 'number', 'string', 'number', 'number', 'uuid']);
  let scope: repo.BoardScope;
  let after: [number, number, string] | null = null;
  if (key) {
    const [cursorWindow, since, asOf, snapshot, points, firstAt, lastUser] = key as [
      string,
      number,
      number,
      string,
      number,
      number,
      string,
    ];
    if (cursorWindow !== window)
      throw invalid('invalid_cursor', `The cursor belongs to the ${cursorWindow} board, not ${window}.`);
    scope = { circleId, sinceMicros: since < 0 ? null : since, asOfMicros: asOf, snapshot: parseSnapshot(snapshot) };
    after = [points, firstAt, lastUser];
  } else {
    const snapshot = await currentSnapshot(ctx.db);
    const now = await repo.nowMicros(ctx.db);
    const days = WINDOW_DAYS[window];
    scope = { circleId, sinceMicros: days === null ? null : now - days * DAY_MICROS, asOfMicros: now, snapshot };
  }
  const rows = await repo.boardPage(ctx.db, scope, {
    after,
    limit: limit + 1,
    meId: request.me ? userId : null,
  });
  const page = rows.filter((r) => !r.is_me);
  const items = page.slice(0, limit);
  const last = items[items.length - 1];
  const mine = rows.find((r) => r.is_me);
  return {
    window,
    items: items.map(toItem),
    nextCursor:
      page.length > limit && last
        ? encodeCursor([
            window,
            scope.sinceMicros ?? -1,
            scope.asOfMicros,
            scope.snapshot,
            last.points,
            last.first_at,
            last.user_id,
          ])
        : null,
    ...(request.me && { me: mine ? toItem(mine) : await notRanked(ctx, userId) }),
  };
}

/** The caller's row when they earned nothing in the window: no rank, zero points. */
async function notRanked(ctx: AppContext, userId: string) {
  const user = await repo.findNames(ctx.db, userId);
  return { rank: null, userId, handle: user.handle, displayName: user.display_name, points: 0 };
}
