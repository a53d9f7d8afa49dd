import type { AppContext } from '../context.js';
import { conflict, invalid } from '../errors.js';
import { decodeCursor, pageOf } from '../infra/cursors.js';
import { recordEvent } from '../events/events.repository.js';
import { MANAGERS, authorize, requireMember, requireRole } from '../circles/access.js';
import { assertPostgresKnowsTimeZone } from '../circles/timezones.js';
import { addDays, challengeDayAt, challengeDayStart } from './challenge-days.js';
import {
  type ChallengeRules,
  RULE_DEFAULTS,
  assertChallengeActive,
  checkSchedule,
  evaluationDay,
  planChallengeEdit,
} from './challenge-rules.js';
import { streakOn } from './streaks.js';
import { scheduleChallengeClosing } from './challenge-closing.job.js';
import * as repo from './challenges.repository.js';

// Creating, reading, editing and cancelling challenges (owners and admins write, members read).

/** Now, read through Date.now so tests can move the clock the day is computed from. */
export const clockNow = () => Date.now();

export const rulesOf = (c: repo.ChallengeRow): ChallengeRules => ({
  startsOn: c.starts_on,
  endsOn: c.ends_on,
  timezone: c.timezone,
  dayStartsAt: c.day_starts_at,
  pointsPerCheckin: c.points_per_checkin,
  minContentLength: c.min_content_length,
  makeUpAllowance: c.make_up_allowance,
  makeUpWindowDays: c.make_up_window_days,
  freezesPerMember: c.freezes_per_member,
});

/** The instant the challenge's last day ends: when it is closed. */
export const endInstant = (r: Pick<ChallengeRules, 'endsOn' | 'timezone' | 'dayStartsAt'>) =>
  challengeDayStart(addDays(r.endsOn, 1), r.timezone, r.dayStartsAt);

export const toChallengeView = (c: repo.ChallengeRow, now: number) => ({
  id: c.id,
  circleId: c.circle_id,
  title: c.title,
  description: c.description,
  ...rulesOf(c),
  status: c.status,
  cancelReason: c.cancel_reason,
  today: challengeDayAt(now, c.timezone, c.day_starts_at),
  startsAt: challengeDayStart(c.starts_on, c.timezone, c.day_starts_at),
  endsAt: c.ends_at,
  createdBy: c.created_by,
  createdAt: c.created_at,
  updatedAt: c.updated_at,
  closedAt: c.closed_at,
});

export interface NewChallenge {
  title: string;
  description?: string;
  startsOn: string;
  endsOn: string;
  timezone: string;
  dayStartsAt?: number;
  pointsPerCheckin: number;
  minContentLength?: number;
  makeUpAllowance?: number;
  makeUpWindowDays?: number;
  freezesPerMember?: number;
}

const blankTitle = () =>
  invalid('invalid_request', 'The title must not be blank.', [{ path: 'body/title', message: 'must not be blank' }]);

export async function createChallenge(ctx: AppContext, userId: string, circleId: string, input: NewChallenge) {
  const now = clockNow();
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  const title = input.title.trim();
  if (!title) throw blankTitle();
  const rules: ChallengeRules = { ...RULE_DEFAULTS, ...input };
  checkSchedule(rules, now);
  const challenge = await ctx.db.transaction().execute(async (trx) => {
    await requireRole(trx, circleId, userId, MANAGERS);
    // Postgres counts the challenge's days too (the health report's check-in rates).
    await assertPostgresKnowsTimeZone(trx, rules.timezone);
    const challenge = await repo.insertChallenge(trx, {
      circle_id: circleId,
      title,
      description: input.description ?? '',
      starts_on: rules.startsOn,
      ends_on: rules.endsOn,
      timezone: rules.timezone,
      day_starts_at: rules.dayStartsAt,
      points_per_checkin: rules.pointsPerCheckin,
      min_content_length: rules.minContentLength,
      make_up_allowance: rules.makeUpAllowance,
      make_up_window_days: rules.makeUpWindowDays,
      freezes_per_member: rules.freezesPerMember,
      ends_at: endInstant(rules),
      created_by: userId,
    });
    await recordEvent(trx, {
      circleId,
      type: 'challenge.created',
      subjectId: challenge.id,
      actorId: userId,
      payload: { title, startsOn: rules.startsOn, endsOn: rules.endsOn, timezone: rules.timezone },
    });
    return challenge;
  });
  await scheduleChallengeClosing(ctx.queues, ctx.log, { id: challenge.id, endsAt: challenge.ends_at });
  return toChallengeView(challenge, now);
}

export async function listChallenges(
  ctx: AppContext,
  userId: string,
  circleId: string,
  limit: number,
  cursor?: string,
) {
  await requireMember(ctx.db, circleId, userId);
  const after = decodeCursor(cursor, ['number', 'uuid']) as [number, string] | null;
  const rows = await repo.listChallenges(ctx.db, circleId, limit, after);
  const now = clockNow();
  const page = pageOf(rows, limit, (r) => [r.cursor_ts, r.id]);
  return { items: page.items.map((r) => toChallengeView(r, now)), nextCursor: page.nextCursor };
}

/** A challenge with the caller's own progress in it. */
export async function getChallenge(ctx: AppContext, userId: string, challengeId: string) {
  const challenge = authorize(await repo.findChallengeWithRole(ctx.db, challengeId, userId), 'challenge');
  const now = clockNow();
  const view = toChallengeView(challenge, now);
  const p = await repo.findParticipant(ctx.db, challengeId, userId);
  const state = {
    run: p?.run ?? 0,
    best: p?.best_streak ?? 0,
    freezesUsed: p?.freezes_used ?? 0,
    lastDate: p?.last_date ?? null,
  };
  const streak = streakOn(
    state,
    evaluationDay(view.today, challenge.ends_on, challenge.cancelled_on),
    challenge.freezes_per_member,
  );
  return {
    ...view,
    me: {
      checkins: p?.checkins ?? 0,
      checkedInToday: p?.last_date === view.today,
      streak: { current: streak.current, best: streak.best },
      makeUpsLeft: Math.max(0, challenge.make_up_allowance - (p?.make_ups_used ?? 0)),
      freezesLeft: challenge.freezes_per_member - streak.freezesUsed,
    },
  };
}

const COLUMN_OF = {
  title: 'title',
  description: 'description',
  startsOn: 'starts_on',
  endsOn: 'ends_on',
  timezone: 'timezone',
  dayStartsAt: 'day_starts_at',
  pointsPerCheckin: 'points_per_checkin',
  minContentLength: 'min_content_length',
  makeUpAllowance: 'make_up_allowance',
  makeUpWindowDays: 'make_up_window_days',
  freezesPerMember: 'freezes_per_member',
} as const;

export type ChallengeEdit = Partial<Omit<NewChallenge, 'description'> & { description: string }>;

/**
 * Edits a challenge under its row lock (check-ins hold it shared, so none can slip in between the
 * "anyone checked in?" question and the change). One `challenge.updated` event with
 * `changes: {field: {from, to}}`; an edit that changes nothing records none.
 */
export async function editChallenge(ctx: AppContext, userId: string, challengeId: string, edit: ChallengeEdit) {
  if (edit.title !== undefined && !edit.title.trim()) throw blankTitle();
  const trimmed = edit.title === undefined ? edit : { ...edit, title: edit.title.trim() };
  const { row, moved, now } = await ctx.db.transaction().execute(async (trx) => {
    const current = authorize(
      await repo.lockChallengeWithRole(trx, challengeId, userId, 'update'),
      'challenge',
      MANAGERS,
    );
    // Read under the lock: an edit that waited for a check-in in flight sees its day started.
    const now = clockNow();
    const hasCheckins = await repo.hasCheckins(trx, challengeId);
    const before = {
      ...rulesOf(current),
      title: current.title,
      description: current.description,
      status: current.status,
    };
    const changes = planChallengeEdit(before, trimmed, { now, hasCheckins });
    if (changes.timezone !== undefined) await assertPostgresKnowsTimeZone(trx, changes.timezone);
    const fields = Object.keys(changes) as (keyof typeof COLUMN_OF)[];
    if (fields.length === 0) return { row: current, moved: false, now };
    const after = { ...rulesOf(current), ...changes };
    const updated = await repo.updateChallenge(trx, challengeId, {
      ...Object.fromEntries(fields.map((f) => [COLUMN_OF[f], changes[f]])),
      ends_at: endInstant(after),
    });
    await recordEvent(trx, {
      circleId: current.circle_id,
      type: 'challenge.updated',
      subjectId: challengeId,
      actorId: userId,
      payload: { changes: Object.fromEntries(fields.map((f) => [f, { from: before[f], to: changes[f] }])) },
    });
    return { row: updated, moved: updated.ends_at.getTime() !== current.ends_at.getTime(), now };
  });
  if (moved) await scheduleChallengeClosing(ctx.queues, ctx.log, { id: row.id, endsAt: row.ends_at });
  return toChallengeView(row, now);
}

/** Cancels a challenge that is still running or upcoming; check-ins made and their points stay. */
export async function cancelChallenge(ctx: AppContext, userId: string, challengeId: string, reason?: string) {
  return ctx.db.transaction().execute(async (trx) => {
    const current = authorize(
      await repo.lockChallengeWithRole(trx, challengeId, userId, 'update'),
      'challenge',
      MANAGERS,
    );
    // Read under the lock, after any check-in in flight committed: the day it cancels on is never
    // before a day someone checked in for.
    const now = clockNow();
    assertChallengeActive(current.status);
    if (challengeDayAt(now, current.timezone, current.day_starts_at) > current.ends_on)
      throw conflict('challenge_ended', `The challenge ended on ${current.ends_on}; it is being closed.`);
    const cancelReason = reason?.trim() || null;
    const updated = await repo.updateChallenge(trx, challengeId, {
      status: 'cancelled',
      cancel_reason: cancelReason,
      cancelled_on: challengeDayAt(now, current.timezone, current.day_starts_at),
    });
    await recordEvent(trx, {
      circleId: current.circle_id,
      type: 'challenge.cancelled',
      subjectId: challengeId,
      actorId: userId,
      payload: { reason: cancelReason },
    });
    return toChallengeView(updated, now);
  });
}
