// Circle health figures as pure functions over per-member aggregates the repository reads in one
// pass. Everything here is exact: points are integers summed as BigInt, and each ratio is rounded
// once, half up, to four decimals from its exact fraction.

/** What the figures need to know about one current member (the owner is never among them). */
export interface MemberActivity {
  userId: string;
  handle: string;
  /** Net points earned in the window (contribution rows of every source). */
  points: number;
  /**
   * The local days (in the circle's time zone) on which the member was active, as days before
   * today: 0 is today, 1 yesterday. Distinct, and at most LOOKBACK_DAYS - 1.
   */
  activeDaysAgo: readonly number[];
}

/** The longest look back any figure needs: the leading level counts the last 90 local days. */
export const LOOKBACK_DAYS = 90;

/** Days on which the member was active among the last `days` local days (today included). */
export function activeDaysWithin(member: MemberActivity, days: number): number {
  // Counted in a loop: it runs several times for each of a circle's (maybe 100,000) members.
  let count = 0;
  for (const d of member.activeDaysAgo) if (d >= 0 && d < days) count++;
  return count;
}

/** Members active at least once in the last `windowDays` local days. */
export const activeMemberCount = (members: readonly MemberActivity[], windowDays: number): number =>
  members.filter((m) => activeDaysWithin(m, windowDays) > 0).length;

/** Seed members: active on at least SEED_MIN_DAYS of the last 7 local days. */
export const SEED_MIN_DAYS = 4;

export interface SeedMember {
  userId: string;
  handle: string;
  activeDays: number;
}

/** The seed members, most active first, then by handle. */
export function seedMembers(members: readonly MemberActivity[]): SeedMember[] {
  return members
    .map((m) => ({ userId: m.userId, handle: m.handle, activeDays: activeDaysWithin(m, 7) }))
    .filter((m) => m.activeDays >= SEED_MIN_DAYS)
    .sort((a, b) => b.activeDays - a.activeDays || compareText(a.handle, b.handle));
}

/**
 * Presence milestones after the Orbit model, from the highest down: leading (active on at least 30
 * of the last 90 days), contributing (7 of the last 30), participating (2 of the last 7). Each
 * member counts once, at the highest level reached; `none` is everyone else.
 */
export const ENGAGEMENT_LEVELS = [
  { level: 'leading', minDays: 30, lastDays: 90 },
  { level: 'contributing', minDays: 7, lastDays: 30 },
  { level: 'participating', minDays: 2, lastDays: 7 },
] as const;

export type EngagementLevel = (typeof ENGAGEMENT_LEVELS)[number]['level'] | 'none';

export function engagementLevel(member: MemberActivity): EngagementLevel {
  for (const { level, minDays, lastDays } of ENGAGEMENT_LEVELS) {
    if (activeDaysWithin(member, lastDays) >= minDays) return level;
  }
  return 'none';
}

export function engagementLevels(members: readonly MemberActivity[]): Record<EngagementLevel, number> {
  const counts: Record<EngagementLevel, number> = { leading: 0, contributing: 0, participating: 0, none: 0 };
  for (const m of members) counts[engagementLevel(m)]++;
  return counts;
}

// Concentration figures read points as shares of a whole, which only non-negative amounts are: a
// member whose adjustments took them below zero in the window counts as holding nothing. Points
// are whole numbers well inside 2^53, so they sort exactly as doubles (a native numeric sort: a
// circle of 100,000 members sorts in milliseconds, where comparing BigInts took most of a second);
// every sum and product is BigInt.
const holdingsAscending = (points: readonly number[]): Float64Array => {
  const values = new Float64Array(points.length);
  points.forEach((p, i) => {
    values[i] = Math.max(p, 0);
  });
  return values.sort();
};
const total = (values: Float64Array): bigint => {
  let sum = 0n;
  for (const v of values) sum += BigInt(v);
  return sum;
};

/**
 * Contributor absence factor (CHAOSS, also "bus factor"): the smallest number of members whose
 * points make at least half of all points. 0 when nobody earned anything.
 */
export function absenceFactor(points: readonly number[]): number {
  const values = holdingsAscending(points);
  const all = total(values);
  if (all === 0n) return 0;
  let running = 0n;
  let members = 0;
  for (let i = values.length - 1; i >= 0; i--) {
    if (2n * running >= all) break;
    running += BigInt(values[i] as number);
    members++;
  }
  return members;
}

export interface TopShare {
  /** How many members the top 20% is: ceil(members / 5). */
  members: number;
  /** Their share of all points, 0..1, to four decimals (0 when nobody earned anything). */
  share: number;
}

/** The share of points held by the top 20% of members (rounded up to whole members). */
export function topFifthShare(points: readonly number[]): TopShare {
  const values = holdingsAscending(points);
  const members = Math.ceil(values.length / 5);
  const all = total(values);
  if (all === 0n) return { members, share: 0 };
  return { members, share: roundRatio(total(values.subarray(values.length - members)), all) };
}

/**
 * The Gini coefficient of points over all members, zeros included: 0 when everyone holds the same,
 * approaching 1 when one member holds everything. With x sorted ascending and i counted from 1,
 * G = (2 * sum(i * x_i) - (n + 1) * sum(x)) / (n * sum(x)), an exact fraction rounded once.
 */
export function gini(points: readonly number[]): number {
  const values = holdingsAscending(points);
  const n = BigInt(values.length);
  const all = total(values);
  if (all === 0n) return 0;
  let weighted = 0n;
  values.forEach((x, i) => {
    if (x > 0) weighted += BigInt(i + 1) * BigInt(x);
  });
  return roundRatio(2n * weighted - (n + 1n) * all, n * all);
}

/** numerator / denominator (both >= 0, denominator > 0) rounded half up to four decimals. */
export function roundRatio(numerator: bigint, denominator: bigint): number {
  if (denominator <= 0n || numerator < 0n) throw new RangeError('a ratio of non-negative amounts is needed');
  const tenThousandths = (numerator * 20000n + denominator) / (2n * denominator);
  return Number(tenThousandths) / 10000;
}

/** A calendar day `days` after (or before, if negative) a local date, both as YYYY-MM-DD. */
export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

export interface WeekCount {
  /** First local day of the week (YYYY-MM-DD). */
  from: string;
  /** Last local day of the week, inclusive. */
  to: string;
  count: number;
}

/**
 * Counts per week for the last `weeks` weeks, oldest first. A week is seven local days ending
 * today, then the seven before it, and so on: every week is whole, so they compare.
 * `countsByDaysAgo` maps days before today (0 = today) to that day's count.
 */
export function weeklyCounts(today: string, countsByDaysAgo: ReadonlyMap<number, number>, weeks: number): WeekCount[] {
  const out: WeekCount[] = [];
  for (let w = weeks - 1; w >= 0; w--) {
    let count = 0;
    for (let d = 0; d < 7; d++) count += countsByDaysAgo.get(w * 7 + d) ?? 0;
    out.push({ from: addDays(today, -(w * 7 + 6)), to: addDays(today, -w * 7), count });
  }
  return out;
}

const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export interface MemberFigures {
  activeMembers: number;
  seedMembers: SeedMember[];
  absenceFactor: number;
  topFifth: TopShare;
  gini: number;
  engagement: Record<EngagementLevel, number>;
}

/** Every member figure of the health report, for a window of `windowDays` local days. */
export function memberFigures(members: readonly MemberActivity[], windowDays: number): MemberFigures {
  const points = members.map((m) => m.points);
  return {
    activeMembers: activeMemberCount(members, windowDays),
    seedMembers: seedMembers(members),
    absenceFactor: absenceFactor(points),
    topFifth: topFifthShare(points),
    gini: gini(points),
    engagement: engagementLevels(members),
  };
}
