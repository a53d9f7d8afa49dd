import { conflict, invalid, type FieldError } from '../errors.js';
import { assertIanaTimeZone } from '../circles/timezones.js';
import { DATE_RANGE, type LocalDate, addDays, challengeDayAt, daysBetween, isLocalDate } from './challenge-days.js';
import { contentLength, normalizeContent } from './checkin-content.js';

// The rules of a check-in challenge as plain functions: no database, no HTTP, no clock (the
// caller passes the instant or the challenge day it reasons about).

/** The longest challenge: a year, leap day included. */
export const MAX_CHALLENGE_DAYS = 366;

import type { ChallengeStatus } from '../infra/database-schema.js';

export type { ChallengeStatus };

/** What decides which day a check-in belongs to and what it may do. */
export interface ChallengeRules {
  startsOn: LocalDate;
  endsOn: LocalDate;
  timezone: string;
  dayStartsAt: number;
  pointsPerCheckin: number;
  minContentLength: number;
  makeUpAllowance: number;
  makeUpWindowDays: number;
  freezesPerMember: number;
}

export const RULE_FIELDS = [
  'startsOn',
  'endsOn',
  'timezone',
  'dayStartsAt',
  'pointsPerCheckin',
  'minContentLength',
  'makeUpAllowance',
  'makeUpWindowDays',
  'freezesPerMember',
] as const satisfies readonly (keyof ChallengeRules)[];

/** The fields that decide which day an instant is: fixed once anyone has checked in. */
const DAY_FIELDS = ['timezone', 'dayStartsAt'] as const;

export const RULE_DEFAULTS = {
  dayStartsAt: 0,
  minContentLength: 1,
  makeUpAllowance: 0,
  makeUpWindowDays: 7,
  freezesPerMember: 0,
} as const;

/**
 * Checks a challenge's calendar: an IANA zone name Intl knows, by the circles' rule (400
 * invalid_timezone; whether Postgres knows it too is the service's question), real dates from
 * FIRST_YEAR to LAST_YEAR (400 invalid_date), and a span of 1 to MAX_CHALLENGE_DAYS days that has
 * not ended yet in its own zone at `now` (400 invalid_challenge_dates).
 */
export function checkSchedule(
  rules: Pick<ChallengeRules, 'startsOn' | 'endsOn' | 'timezone' | 'dayStartsAt'>,
  now: number,
) {
  assertIanaTimeZone(rules.timezone);
  const bad: FieldError[] = (['startsOn', 'endsOn'] as const)
    .filter((field) => !isLocalDate(rules[field]))
    .map((field) => ({ path: `body/${field}`, message: `is not a calendar date (YYYY-MM-DD) from ${DATE_RANGE}` }));
  if (bad.length) throw invalid('invalid_date', `Dates are local calendar days, YYYY-MM-DD, from ${DATE_RANGE}.`, bad);
  const days = daysBetween(rules.startsOn, rules.endsOn) + 1;
  if (days < 1)
    throw invalid('invalid_challenge_dates', 'The challenge must end on or after the day it starts.', [
      { path: 'body/endsOn', message: 'is before startsOn' },
    ]);
  if (days > MAX_CHALLENGE_DAYS)
    throw invalid('invalid_challenge_dates', `A challenge lasts at most ${MAX_CHALLENGE_DAYS} days.`, [
      { path: 'body/endsOn', message: `is more than ${MAX_CHALLENGE_DAYS} days after startsOn` },
    ]);
  const today = challengeDayAt(now, rules.timezone, rules.dayStartsAt);
  if (rules.endsOn < today)
    throw invalid('invalid_challenge_dates', `The challenge would already be over: it is ${today} in its zone.`, [
      { path: 'body/endsOn', message: `is before today (${today})` },
    ]);
}

/** Check-ins, edits and cancelling need a challenge that still runs. */
export function assertChallengeActive(status: ChallengeStatus): void {
  if (status === 'cancelled') throw conflict('challenge_cancelled', 'The challenge was cancelled.');
  if (status === 'closed') throw conflict('challenge_ended', 'The challenge is over.');
}

/**
 * The columns an edit changes. Title and description may change while the challenge runs; the
 * rules only before its first day (409 challenge_started), so nobody's check-ins are judged by
 * rules they did not see. The zone and day start are fixed once anyone has checked in (409
 * challenge_has_checkins), whatever the dates say: moving them would move days already counted.
 */
export function planChallengeEdit(
  current: ChallengeRules & { title: string; description: string; status: ChallengeStatus },
  edit: Partial<ChallengeRules & { title: string; description: string }>,
  context: { now: number; hasCheckins: boolean },
): Partial<ChallengeRules & { title: string; description: string }> {
  assertChallengeActive(current.status);
  const changed = Object.fromEntries(
    Object.entries(edit).filter(
      ([field, value]) => value !== undefined && current[field as keyof typeof current] !== value,
    ),
  ) as Partial<ChallengeRules & { title: string; description: string }>;
  const rules = RULE_FIELDS.filter((field) => field in changed);
  if (rules.length === 0) return changed;
  const dayFields = DAY_FIELDS.filter((field) => field in changed);
  if (dayFields.length && context.hasCheckins)
    throw conflict(
      'challenge_has_checkins',
      `${dayFields.join(' and ')} cannot change once members have checked in: their days are counted.`,
    );
  const today = challengeDayAt(context.now, current.timezone, current.dayStartsAt);
  if (today >= current.startsOn)
    throw conflict(
      'challenge_started',
      `The challenge started on ${current.startsOn}; only its title and description can change now.`,
    );
  checkSchedule({ ...current, ...changed }, context.now);
  return changed;
}

/** A check-in's text, normalized, or 400 content_too_short under the challenge's minimum. */
export function checkContent(content: string, minContentLength: number): string {
  const normalized = normalizeContent(content);
  const min = Math.max(1, minContentLength);
  if (contentLength(normalized) < min)
    throw invalid('content_too_short', `A check-in needs at least ${min} characters (spaces not counted twice).`, [
      { path: 'body/content', message: `shorter than ${min} characters` },
    ]);
  return normalized;
}

/**
 * Which day a check-in is for. Without `date` (or with today's), it is for today, the challenge
 * day on the server's clock, which must lie inside the challenge. A `date` in the past is a
 * make-up: inside the challenge (409 date_outside_challenge), not before the day the member joined
 * (409 date_before_joining), no further back than the make-up window (409 makeup_window_passed),
 * and one of the member's make-ups (409 no_makeups_left). A
 * future `date` is 400 checkin_date_in_future. Once the last day is over nothing is accepted,
 * make-ups included (409 challenge_ended): the challenge is being closed.
 */
export function planCheckin(
  rules: Pick<ChallengeRules, 'startsOn' | 'endsOn' | 'makeUpAllowance' | 'makeUpWindowDays'>,
  today: LocalDate,
  date: string | undefined,
  makeUpsUsed: number,
  /** The challenge-zone day the caller's membership began: nobody misses a day before joining. */
  joinedOn: LocalDate,
): { localDate: LocalDate; makeUp: boolean } {
  if (date !== undefined && !isLocalDate(date))
    throw invalid('invalid_date', `date is a local calendar day, YYYY-MM-DD, from ${DATE_RANGE}.`, [
      { path: 'body/date', message: `is not a calendar date from ${DATE_RANGE}` },
    ]);
  if (date !== undefined && date > today)
    throw invalid('checkin_date_in_future', `It is ${today} in the challenge's zone; ${date} has not come yet.`, [
      { path: 'body/date', message: `is after today (${today})` },
    ]);
  if (today > rules.endsOn) throw conflict('challenge_ended', `The challenge ended on ${rules.endsOn}.`);
  if (date === undefined || date === today) {
    if (today < rules.startsOn)
      throw conflict('challenge_not_started', `The challenge starts on ${rules.startsOn}; it is ${today} there.`);
    return { localDate: today, makeUp: false };
  }
  if (date < rules.startsOn)
    throw conflict('date_outside_challenge', `${date} is before the challenge's first day, ${rules.startsOn}.`);
  if (date < joinedOn)
    throw conflict('date_before_joining', `You joined the circle on ${joinedOn}; ${date} was before that.`);
  if (daysBetween(date, today) > rules.makeUpWindowDays)
    throw conflict(
      'makeup_window_passed',
      `Make-ups reach back ${rules.makeUpWindowDays} days; the earliest is ${addDays(today, -rules.makeUpWindowDays)}.`,
    );
  if (makeUpsUsed >= rules.makeUpAllowance)
    throw conflict('no_makeups_left', `You have used all ${rules.makeUpAllowance} make-up check-ins.`);
  return { localDate: date, makeUp: true };
}

/**
 * The day streaks are evaluated on: today; for a challenge that has ended, the day after its last;
 * for a cancelled one, the day it was cancelled on (that day was still open, so a member who had
 * not checked in yet has not missed it). Streaks stand as they were when the challenge stopped.
 */
export const evaluationDay = (today: LocalDate, endsOn: LocalDate, cancelledOn: LocalDate | null = null): LocalDate => {
  const day = today > endsOn ? addDays(endsOn, 1) : today;
  return cancelledOn !== null && cancelledOn < day ? cancelledOn : day;
};
