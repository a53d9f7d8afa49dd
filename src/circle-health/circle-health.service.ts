import type { AppContext } from '../context.js';
import { notFound } from '../errors.js';
import { MANAGERS, requireMember } from '../circles/access.js';
import type { Db } from '../infra/db.js';
import {
  activeDaysWithin,
  addDays,
  LOOKBACK_DAYS,
  memberFigures,
  SEED_MIN_DAYS,
  roundRatio,
  weeklyCounts,
  type MemberActivity,
} from './figures.js';
import { daysFromMasks, rollupsServe, withTail } from './rollups.js';
import * as repo from './circle-health.repository.js';
import * as rollups from './rollups.repository.js';

export type HealthWindow = '7d' | '30d' | '90d';

const WINDOW_DAYS: Record<HealthWindow, number> = { '7d': 7, '30d': 30, '90d': 90 };
const THROUGHPUT_WEEKS = 8;

/**
 * A circle's health report for its owner and admins, counted in local days of the circle's time
 * zone. A window of N days is today and the N - 1 days before it. The owner is left out of every
 * member figure; everyone else who belongs to the circle now counts, zeros included.
 */
export async function circleHealth(ctx: AppContext, userId: string, circleId: string, window: HealthWindow = '30d') {
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  const clock = await repo.circleClock(ctx.db, circleId);
  if (!clock) throw notFound('circle');
  const windowDays = WINDOW_DAYS[window];
  const [rows, flow, completions, checkinRates] = await Promise.all([
    memberActivity(ctx.db, circleId, clock, windowDays),
    repo.workFlow(ctx.db, circleId, clock, windowDays),
    repo.completionsByDay(ctx.db, circleId, clock, THROUGHPUT_WEEKS * 7),
    repo.checkinRatesYesterday(ctx.db, circleId),
  ]);
  const members = rows;
  const figures = memberFigures(members, windowDays);
  return {
    circleId,
    window,
    timezone: clock.timezone,
    today: clock.today,
    windowStart: addDays(clock.today, -(windowDays - 1)),
    members: members.length,
    activeMembers: figures.activeMembers,
    seedMembers: figures.seedMembers,
    absenceFactor: figures.absenceFactor,
    top20Share: figures.topFifth,
    gini: figures.gini,
    engagementLevels: figures.engagement,
    expiringClaims: flow.expiring_claims,
    staleSubmissions: flow.stale_submissions,
    medianClaimToSubmissionSeconds: flow.median_seconds,
    weeklyThroughput: weeklyCounts(clock.today, completions, THROUGHPUT_WEEKS),
    checkinRates: checkinRates.map((c) => ({
      ...c,
      rate: c.participants ? roundRatio(BigInt(c.checkedIn), BigInt(c.participants)) : 0,
    })),
  };
}

const toActivity = (r: { user_id: string; handle: string; points: number; days_ago: number[] }): MemberActivity => ({
  userId: r.user_id,
  handle: r.handle,
  points: r.points,
  activeDaysAgo: r.days_ago,
});

/**
 * The members' activity, exact at the moment of the read: the daily rollups up to the circle's
 * watermark plus the rows committed since (the tail), both read in one repeatable-read snapshot
 * so a fold committing meanwhile can neither double nor drop a row. Rollups built in another zone
 * than the circle's (the owner just changed it, the rebuild is queued) or not built yet answer
 * nothing: the source rows are read instead.
 */
async function memberActivity(db: Db, circleId: string, clock: repo.CircleClock, windowDays: number) {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx): Promise<MemberActivity[]> => {
      const state = await rollups.readWatermark(trx, circleId);
      if (!rollupsServe(state, clock.timezone))
        return (await repo.memberActivity(trx, circleId, clock, windowDays)).map(toActivity);
      const days = {
        today: clock.today,
        windowDays,
        since: addDays(clock.today, -(LOOKBACK_DAYS - 1)),
        windowStart: addDays(clock.today, -(windowDays - 1)),
      };
      const rows = await rollups.rolledUpActivity(trx, circleId, days);
      const tail = await rollups.tailActivity(trx, circleId, clock.timezone, state.foldedThrough, days);
      const members = withTail(
        rows.map(
          (r): MemberActivity => ({
            userId: r.user_id,
            handle: '',
            points: r.points,
            activeDaysAgo: daysFromMasks([r.days0, r.days1, r.days2]),
          }),
        ),
        new Map(tail.map((t) => [t.user_id, { points: t.points, daysAgo: t.days_ago }])),
      );
      // Only seed members are shown by handle (and ordered by it): read the handles of those who
      // can be, not of every member.
      const candidates = members.filter((m) => activeDaysWithin(m, 7) >= SEED_MIN_DAYS);
      const handles = await rollups.memberHandles(
        trx,
        candidates.map((m) => m.userId),
      );
      for (const m of candidates) m.handle = handles.get(m.userId) ?? '';
      return members;
    });
}
