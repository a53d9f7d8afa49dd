import type { AppContext } from '../context.js';
import { invalid } from '../errors.js';
import { decodeCursor, pageOf } from '../infra/cursors.js';
import { authorize } from '../circles/access.js';
import { challengeDayAt } from './challenge-days.js';
import { evaluationDay } from './challenge-rules.js';
import { clockNow } from './challenges.service.js';
import { findChallengeWithRole } from './challenges.repository.js';
import { type LeaderboardSort, leaderboardPage } from './challenge-leaderboard.repository.js';

/**
 * The members who checked in, best first by the chosen sort. Keyset-paginated on the sort key and
 * the user id: members joining the board while a client pages through it land on one page or
 * another, never on two, and nobody already on the board is skipped. The cursor names its sort,
 * so it cannot be replayed against another.
 */
export async function challengeLeaderboard(
  ctx: AppContext,
  userId: string,
  challengeId: string,
  query: { sort?: LeaderboardSort; me?: boolean; limit?: number; cursor?: string },
) {
  const challenge = authorize(await findChallengeWithRole(ctx.db, challengeId, userId), 'challenge');
  const sort = query.sort ?? 'checkins';
  const limit = query.limit ?? 50;
  const key = decodeCursor(query.cursor, ['string', 'int32', 'int32', 'int32', 'uuid']);
  if (key && key[0] !== sort) throw invalid('invalid_cursor', 'The cursor belongs to another sort order.');
  const today = challengeDayAt(clockNow(), challenge.timezone, challenge.day_starts_at);
  const rows = await leaderboardPage(ctx.db, {
    challengeId,
    day: evaluationDay(today, challenge.ends_on, challenge.cancelled_on),
    freezes: challenge.freezes_per_member,
    sort,
    limit: query.me ? 1 : limit,
    after: query.me || !key ? null : (key.slice(1) as [number, number, number, string]),
    only: query.me ? userId : null,
  });
  const page = query.me
    ? { items: rows, nextCursor: null }
    : pageOf(rows, limit, (r) => [sort, r.k1, r.k2, r.k3, r.user_id]);
  return {
    items: page.items.map((r) => ({
      rank: r.rank,
      userId: r.user_id,
      handle: r.handle,
      displayName: r.display_name,
      checkins: r.checkins,
      currentStreak: r.current,
      bestStreak: r.best,
    })),
    nextCursor: page.nextCursor,
  };
}
