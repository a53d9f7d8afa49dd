import type { AppContext } from '../context.js';
import { conflict, invalid } from '../errors.js';
import { decodeCursor, pageOf } from '../infra/cursors.js';
import { isUniqueViolation } from '../infra/pg-errors.js';
import { recordEvent } from '../events/events.repository.js';
import { authorize } from '../circles/access.js';
import { lockMembershipShared } from '../circles/circles.repository.js';
import { insertContribution } from '../contributions/contributions.repository.js';
import { challengeDayAt, isLocalDate } from './challenge-days.js';
import { assertChallengeActive, checkContent, evaluationDay, planCheckin } from './challenge-rules.js';
import { contentKey } from './checkin-content.js';
import { streakAfter, streakOn, streakState } from './streaks.js';
import { clockNow, rulesOf } from './challenges.service.js';
import { findChallengeWithRole, lockChallengeWithRole } from './challenges.repository.js';
import * as repo from './checkins.repository.js';

// Checking in: one check-in per member per challenge day, the day computed on the server's clock
// in the challenge's zone; points into the circle's contribution ledger; the streak after it.

export const toCheckinView = (c: repo.CheckinRow) => ({
  id: c.id,
  challengeId: c.challenge_id,
  userId: c.user_id,
  localDate: c.local_date,
  makeUp: c.make_up,
  points: c.points,
  content: c.content,
  links: c.links,
  createdAt: c.created_at,
});

const alreadyCheckedIn = (date: string) => conflict('already_checked_in', `You already checked in for ${date}.`);
const duplicateContent = () =>
  conflict('duplicate_content', 'You already checked in with this content in this challenge; write something new.');

export interface CheckinInput {
  content: string;
  links?: string[];
  date?: string;
}

/**
 * One transaction: the challenge share-locked (its zone and day start cannot change meanwhile),
 * the caller's membership share-locked (they cannot leave meanwhile), the member's participant
 * row locked (their check-ins run one at a time), the day planned, the check-in and its
 * contribution written, the streak state saved, the event recorded. The unique constraints on
 * (challenge, member, day) and (challenge, member, content) stand behind the checks made under
 * the lock.
 */
export async function checkIn(ctx: AppContext, userId: string, challengeId: string, input: CheckinInput) {
  return ctx.db.transaction().execute(async (trx) => {
    const found = await lockChallengeWithRole(trx, challengeId, userId, 'share');
    // The caller's membership share-locked too, as claims do: a departure committing while this
    // check-in runs would otherwise leave a check-in, and its points, of someone no longer in the
    // circle. Now the departure waits for this transaction, or it committed first and the caller
    // is not found.
    const membership = found?.role ? await lockMembershipShared(trx, found.circle_id, userId) : undefined;
    const challenge = authorize(found && { ...found, role: membership?.role ?? null }, 'challenge');
    if (!membership) throw new Error('a check-in authorized without a membership');
    assertChallengeActive(challenge.status);
    const rules = rulesOf(challenge);
    const normalized = checkContent(input.content, rules.minContentLength);
    const member = await repo.lockParticipant(trx, { challengeId, userId, circleId: challenge.circle_id });
    // The day is read once every lock is held, not when the request arrived: a cancel or an edit
    // waiting on this check-in reads the clock after it commits, so across midnight the two can
    // never see the days the wrong way round (a check-in dated after the day its challenge was
    // cancelled on).
    const today = challengeDayAt(clockNow(), rules.timezone, rules.dayStartsAt);
    // A member who left and came back makes up days of their current membership only.
    const joinedOn = challengeDayAt(membership.joined_at.getTime(), rules.timezone, rules.dayStartsAt);
    const { localDate, makeUp } = planCheckin(rules, today, input.date, member.make_ups_used, joinedOn);
    const key = contentKey(normalized);
    const clash = await repo.findClash(trx, { challengeId, userId, localDate, contentKey: key });
    if (clash?.same_day) throw alreadyCheckedIn(localDate);
    if (clash?.same_content) throw duplicateContent();
    let checkin: repo.CheckinRow;
    try {
      checkin = await repo.insertCheckin(trx, {
        challenge_id: challengeId,
        circle_id: challenge.circle_id,
        user_id: userId,
        local_date: localDate,
        content: input.content,
        links: input.links ?? [],
        content_key: key,
        make_up: makeUp,
        points: rules.pointsPerCheckin,
      });
    } catch (err) {
      if (isUniqueViolation(err, 'checkins_one_per_member_day')) throw alreadyCheckedIn(localDate);
      if (isUniqueViolation(err, 'checkins_no_duplicate_content')) throw duplicateContent();
      throw err;
    }
    await insertContribution(trx, {
      circleId: challenge.circle_id,
      projectId: null,
      userId,
      source: 'checkin',
      checkinId: checkin.id,
      points: rules.pointsPerCheckin,
      createdBy: userId,
    });
    const stored = {
      run: member.run,
      best: member.best_streak,
      freezesUsed: member.freezes_used,
      lastDate: member.last_date,
    };
    // Today's check-in extends the stored state; a make-up may land inside it: walk every date.
    const state =
      streakAfter(stored, localDate, rules.freezesPerMember) ??
      streakState(await repo.memberCheckinDates(trx, challengeId, userId), rules.freezesPerMember);
    const saved = await repo.saveParticipant(
      trx,
      challengeId,
      userId,
      { checkins: member.checkins + 1, makeUpsUsed: member.make_ups_used + (makeUp ? 1 : 0) },
      state,
    );
    await recordEvent(trx, {
      circleId: challenge.circle_id,
      type: 'checkin.recorded',
      subjectId: checkin.id,
      actorId: userId,
      payload: { challengeId, userId, localDate, makeUp, points: rules.pointsPerCheckin },
    });
    const streak = streakOn(state, evaluationDay(today, rules.endsOn), rules.freezesPerMember);
    return {
      ...toCheckinView(checkin),
      streak: { current: streak.current, best: streak.best },
      checkins: saved.checkins,
      makeUpsLeft: Math.max(0, rules.makeUpAllowance - saved.make_ups_used),
      freezesLeft: rules.freezesPerMember - streak.freezesUsed,
    };
  });
}

/** The caller's own check-ins of a challenge, latest day first. */
export async function listMyCheckins(
  ctx: AppContext,
  userId: string,
  challengeId: string,
  limit: number,
  cursor?: string,
) {
  authorize(await findChallengeWithRole(ctx.db, challengeId, userId), 'challenge');
  const key = decodeCursor(cursor, ['string']);
  const before = key ? String(key[0]) : null;
  if (before !== null && !isLocalDate(before))
    throw invalid('invalid_cursor', 'The cursor is not one this API issued.');
  const rows = await repo.listMemberCheckins(ctx.db, challengeId, userId, limit, before);
  const page = pageOf(rows, limit, (r) => [r.local_date]);
  return { items: page.items.map(toCheckinView), nextCursor: page.nextCursor };
}
