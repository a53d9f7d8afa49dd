// The rules of the daily rollups (circle_member_days), as plain functions. The rollups hold, per
// circle, member and local day, what the source rows (claims, submissions, contributions) whose
// transactions are visible in the circle's watermark snapshot add up to. A health read adds the
// rows not folded yet (the tail), so it is exact at any moment however far behind the job is.

import type { MemberActivity } from './figures.js';

/** How far a circle's rollups are folded: the watermark snapshot and the zone of their days. */
export interface RollupState {
  /** pg_snapshot text; null before the first fold. */
  foldedThrough: string | null;
  timezone: string | null;
}

/**
 * Rollups count local days in the zone they were built in: they answer for a report counted in
 * `timezone` only if built in it. After the owner changes the zone they answer for nothing until
 * a fold rebuilds them, and reports read the source rows meanwhile.
 */
export const rollupsServe = (
  state: RollupState | undefined,
  timezone: string,
): state is RollupState & { foldedThrough: string } => state?.foldedThrough != null && state.timezone === timezone;

/**
 * What a fold does: add the rows committed since the watermark, or, when the rollups are missing
 * or were built in another zone, drop them and fold every row again.
 */
export const foldKind = (state: RollupState | undefined, timezone: string): 'incremental' | 'rebuild' =>
  rollupsServe(state, timezone) ? 'incremental' : 'rebuild';

/**
 * A member's active days as the rollup read returns them: bit d of mask i is the day
 * i * DAYS_PER_MASK + d days ago. Integers of 30 bits travel as plain int4 and parse cheaply,
 * where an array per member of 100,000 would not; three cover the LOOKBACK_DAYS.
 */
export const DAYS_PER_MASK = 30;

export function daysFromMasks(masks: readonly number[]): number[] {
  const days: number[] = [];
  masks.forEach((mask, i) => {
    for (let bit = 0; bit < DAYS_PER_MASK; bit++) if ((mask >>> bit) & 1) days.push(i * DAYS_PER_MASK + bit);
  });
  return days;
}

/** The masks of a set of days ago (the inverse of daysFromMasks; days out of range are left out). */
export function masksFromDays(daysAgo: readonly number[], masks: number): number[] {
  const out = Array.from({ length: masks }, () => 0);
  for (const d of daysAgo) {
    const i = Math.floor(d / DAYS_PER_MASK);
    if (d >= 0 && i < masks) out[i] = (out[i] as number) | (1 << (d % DAYS_PER_MASK));
  }
  return out;
}

/** One member's activity in the rows not folded yet: net points in the window, active days. */
export interface TailActivity {
  points: number;
  daysAgo: readonly number[];
}

/**
 * The members' activity from the rollups plus the tail: points add up, and a day counts once
 * whether the rollups, the tail or both have it. `members` come in the order the report keeps.
 */
export function withTail(
  members: readonly MemberActivity[],
  tail: ReadonlyMap<string, TailActivity>,
): MemberActivity[] {
  if (tail.size === 0) return [...members];
  return members.map((m) => {
    const late = tail.get(m.userId);
    if (!late) return m;
    return {
      ...m,
      points: m.points + late.points,
      activeDaysAgo: [...new Set([...m.activeDaysAgo, ...late.daysAgo])].sort((a, b) => a - b),
    };
  });
}
