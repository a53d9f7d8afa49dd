import { createHash } from 'node:crypto';

// The settlement split: how a pool P (integer minor units) is divided among a project's
// contributors. Pure and exact: BigInt throughout, no database, no HTTP, no clock, no floats.
// The rules, so that any member can check a payout by hand:
//
// 1. Payees. A contributor qualifies when their point total w is > 0 (points come from an
//    append-only ledger, so compensating rows can bring a total to zero or below) and, with a
//    minimum policy, w >= minPoints. Everyone else gets nothing and is not listed.
//    W = the sum of the payees' points.
// 2. Base share. Each payee is entitled to exactly P·w/W and first gets floor(P·w/W).
// 3. Remainder. R = P − Σ floors (0 <= R < number of payees) is handed out one unit each to the
//    R payees with the largest remainders P·w mod W. Ties go to the earliest first contribution,
//    then to the smaller user id (compared by UTF-16 code units, as JS `<` does; never by locale).
//    Hence Σ payouts = P, and every payout is its exact entitlement rounded down, or up by one
//    unit (`roundedUp`).
// 4. Cap. With capBasisPoints = b nobody receives more than C = floor(P·b/10000). Payees whose
//    entitlement would exceed C get exactly C; the excess is shared among the others in
//    proportion to their points, again and again until nobody exceeds C (water-filling). The
//    capped payees are always those with the most points. With k payees capped, the others share
//    P' = P − k·C over their points W': entitlement P'·w/W', then rules 2 and 3 with P' and W'.
//    C is a whole number, so rounding up never takes anyone over it.
//    When every payee is capped (e.g. two payees, a 30% cap: 30 + 30 of 100), the pool cannot be
//    spent: each gets C and the rest, P − n·C, is returned as `undistributed`; it stays in the
//    pool and the caller decides its fate. Always Σ amounts + undistributed = P.
// 5. Share. Each row carries its exact fraction of the pool, reduced by the gcd: w/W when nobody
//    is capped; C/P for a capped payee; P'·w/(P·W') for the others when someone is capped.
//    amount = P·share, rounded down, or up when roundedUp.
//
// Edge cases: no payees: no rows, the whole pool undistributed. P = 0: every payee gets 0 with
// their proportional share w/W, none rounded up (the cap is then 0 too and binds nobody). A
// single payee gets the whole pool, or C under a cap below 100% with the rest undistributed.
//
// Output order: amount descending, then earliest first contribution, then user id; it does not
// depend on the input order. The same inputs give the same rows, and the same hash (below).
//
// Cost: a few sorts, O(n log n); the cap needs one pass over the points sorted descending.

export interface SplitContributor {
  readonly userId: string;
  /** The contributor's point total from the ledger; may be zero or negative. */
  readonly points: bigint;
  /**
   * Microseconds since the epoch (as `micros()` in infra/sql.ts selects a timestamptz): a Date
   * keeps only milliseconds, and two first contributions in the same millisecond still need an order.
   */
  readonly firstContributionAt: number;
}

/** Plain proportional with neither field. */
export interface SplitPolicy {
  /** Payees need at least this many points. */
  readonly minPoints?: bigint;
  /** No payee receives more than floor(pool·capBasisPoints/10000); an integer in 0..10000. */
  readonly capBasisPoints?: number;
}

export interface SplitInput {
  /** Minor units, >= 0. */
  readonly pool: bigint;
  readonly contributors: Iterable<SplitContributor>;
  readonly policy?: SplitPolicy;
}

export interface Fraction {
  readonly numerator: bigint;
  readonly denominator: bigint;
}

export interface Payout {
  readonly userId: string;
  readonly points: bigint;
  readonly amount: bigint;
  /** The exact fraction of the pool this payee is entitled to, in lowest terms. */
  readonly share: Fraction;
  /** True for the payees who received one of the R remainder units. */
  readonly roundedUp: boolean;
  /** True when the cap bound this payee (amount = cap). */
  readonly capped: boolean;
}

export interface SplitResult {
  readonly pool: bigint;
  readonly policy: { readonly minPoints: bigint | null; readonly capBasisPoints: number | null };
  /** C in minor units; null without a cap. */
  readonly cap: bigint | null;
  /** W: the payees' points. */
  readonly totalPoints: bigint;
  readonly payouts: readonly Payout[];
  /** What stays in the pool: all of it with no payees, P − n·C when every payee is capped, else 0. */
  readonly undistributed: bigint;
}

interface Row {
  readonly userId: string;
  readonly points: bigint;
  readonly at: number;
  amount: bigint;
  remainder: bigint;
  share: Fraction;
  roundedUp: boolean;
  capped: boolean;
}

export function splitPool(input: SplitInput): SplitResult {
  const { pool } = input;
  if (typeof pool !== 'bigint' || pool < 0n) throw new RangeError('pool must be a bigint >= 0');
  const policy = normalizePolicy(input.policy ?? {});

  const rows: Row[] = [];
  const seen = new Set<string>();
  let totalPoints = 0n;
  for (const c of input.contributors) {
    assertUserId(c.userId);
    if (typeof c.points !== 'bigint') throw new TypeError(`points of ${c.userId} must be a bigint`);
    if (!Number.isSafeInteger(c.firstContributionAt)) {
      throw new RangeError(`firstContributionAt of ${c.userId} must be integer microseconds`);
    }
    // Two rows for one member would make the tie-break ambiguous; the caller aggregates first.
    if (seen.has(c.userId)) throw new RangeError(`duplicate contributor ${c.userId}`);
    seen.add(c.userId);
    if (c.points <= 0n || (policy.minPoints !== null && c.points < policy.minPoints)) continue;
    rows.push({
      userId: c.userId,
      points: c.points,
      at: c.firstContributionAt,
      amount: 0n,
      remainder: 0n,
      share: ZERO,
      roundedUp: false,
      capped: false,
    });
    totalPoints += c.points;
  }

  const cap = policy.capBasisPoints === null ? null : (pool * BigInt(policy.capBasisPoints)) / 10000n;

  // Water-filling: the payee with the most points still uncapped is capped while its entitlement
  // from what is left, rest·w/restPoints, exceeds C. Each capping only raises what is left per point
  // for the others, so the capped set is a prefix of the payees sorted by points, found in one pass.
  let capped = 0;
  let rest = pool;
  let restPoints = totalPoints;
  if (cap !== null) {
    rows.sort((a, b) => (a.points > b.points ? -1 : a.points < b.points ? 1 : 0));
    for (let row = rows[0]; row !== undefined && rest * row.points > cap * restPoints; row = rows[++capped]) {
      row.amount = cap;
      row.capped = true;
      row.share = reduce(cap, pool);
      rest -= cap;
      restPoints -= row.points;
    }
  }

  if (capped === rows.length) {
    return { pool, policy, cap, totalPoints, payouts: rows.sort(outputOrder).map(toPayout), undistributed: rest };
  }

  let floors = 0n;
  for (const row of rows.slice(capped)) {
    const exact = rest * row.points;
    row.amount = exact / restPoints;
    row.remainder = exact % restPoints;
    // Nobody capped: the plain w/W (also right when P = 0, where rest/pool would be 0/0).
    row.share = capped === 0 ? reduce(row.points, totalPoints) : reduce(exact, pool * restPoints);
    floors += row.amount;
  }

  const units = Number(rest - floors);
  if (units > 0) {
    const uncapped = rows.slice(capped).sort(remainderOrder);
    for (const row of uncapped.slice(0, units)) {
      row.amount += 1n;
      row.roundedUp = true;
    }
  }

  return { pool, policy, cap, totalPoints, payouts: rows.sort(outputOrder).map(toPayout), undistributed: 0n };
}

// The canonical serialization, from which the stored result hash is computed. UTF-8, one record
// per line, every line (the last included) ending in "\n", integers in plain decimal:
//
//   circle-actions/settlement-split/v1
//   pool=<P>
//   minPoints=<minPoints, or - without a minimum>
//   capBasisPoints=<b, or - without a cap>
//   undistributed=<undistributed>
//   <userId>,<points>,<amount>,<numerator>/<denominator>,<true|false for roundedUp>   one per payout, in output order
//
// The hash is the lowercase hex SHA-256 of those bytes. E.g. pool 10 over a, b, c with one point
// each, first contributions in that order, no policy, gives the lines "pool=10", "minPoints=-", "capBasisPoints=-", "undistributed=0",
// "a,1,4,1/3,true", "b,1,3,1/3,false", "c,1,3,1/3,false" after the first.

export function* canonicalSplitLines(result: SplitResult): Generator<string> {
  yield 'circle-actions/settlement-split/v1\n';
  yield `pool=${result.pool}\n`;
  yield `minPoints=${result.policy.minPoints ?? '-'}\n`;
  yield `capBasisPoints=${result.policy.capBasisPoints ?? '-'}\n`;
  yield `undistributed=${result.undistributed}\n`;
  for (const p of result.payouts) {
    assertUserId(p.userId);
    yield `${p.userId},${p.points},${p.amount},${p.share.numerator}/${p.share.denominator},${p.roundedUp}\n`;
  }
}

export function canonicalSplitText(result: SplitResult): string {
  return [...canonicalSplitLines(result)].join('');
}

/** Lowercase hex SHA-256 of the canonical serialization, fed line by line. */
export function splitResultHash(result: SplitResult): string {
  const hash = createHash('sha256');
  for (const line of canonicalSplitLines(result)) hash.update(line, 'utf8');
  return hash.digest('hex');
}

const ZERO: Fraction = { numerator: 0n, denominator: 1n };

function normalizePolicy(policy: SplitPolicy): SplitResult['policy'] {
  const { minPoints, capBasisPoints } = policy;
  if (minPoints !== undefined && (typeof minPoints !== 'bigint' || minPoints < 0n)) {
    throw new RangeError('minPoints must be a bigint >= 0');
  }
  if (
    capBasisPoints !== undefined &&
    !(Number.isInteger(capBasisPoints) && capBasisPoints >= 0 && capBasisPoints <= 10000)
  ) {
    throw new RangeError('capBasisPoints must be an integer in 0..10000');
  }
  return { minPoints: minPoints ?? null, capBasisPoints: capBasisPoints ?? null };
}

// The canonical line format separates fields with "," and records with "\n".
function assertUserId(userId: unknown): asserts userId is string {
  if (typeof userId !== 'string' || userId === '' || /[,\r\n]/.test(userId)) {
    throw new RangeError(`invalid user id ${JSON.stringify(userId)}`);
  }
}

function tieBreak(a: Row, b: Row): number {
  return a.at - b.at || (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0);
}

// Remainders share the denominator restPoints, so comparing numerators compares the fractions.
function remainderOrder(a: Row, b: Row): number {
  return a.remainder > b.remainder ? -1 : a.remainder < b.remainder ? 1 : tieBreak(a, b);
}

function outputOrder(a: Row, b: Row): number {
  return a.amount > b.amount ? -1 : a.amount < b.amount ? 1 : tieBreak(a, b);
}

function reduce(numerator: bigint, denominator: bigint): Fraction {
  let a = numerator;
  let b = denominator;
  while (b !== 0n) {
    const r = a % b;
    a = b;
    b = r;
  }
  return { numerator: numerator / a, denominator: denominator / a };
}

function toPayout(row: Row): Payout {
  return {
    userId: row.userId,
    points: row.points,
    amount: row.amount,
    share: row.share,
    roundedUp: row.roundedUp,
    capped: row.capped,
  };
}
