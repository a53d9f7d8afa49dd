import t from 'tap';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  canonicalSplitText,
  splitPool,
  splitResultHash,
  type Payout,
  type SplitContributor,
  type SplitPolicy,
  type SplitResult,
} from '../../src/settlements/split.js';

// The settlement split: worked examples a member could redo by hand, the canonical hash, bad input,
// then properties checked by fast-check against a deliberately naive reference implementation.

const c = (userId: string, points: bigint, firstContributionAt = 0): SplitContributor => ({
  userId,
  points,
  firstContributionAt,
});

/** [userId, amount, roundedUp, capped] per payout, in output order. */
const rows = (r: SplitResult) => r.payouts.map((p) => [p.userId, p.amount, p.roundedUp, p.capped] as const);
const shares = (r: SplitResult) => r.payouts.map((p) => `${p.userId}=${p.share.numerator}/${p.share.denominator}`);

t.test('pool 10 over 1,1,1: 4,3,3, the unit going to the earliest first contribution', async (t) => {
  const r = splitPool({ pool: 10n, contributors: [c('a', 1n, 30), c('b', 1n, 10), c('c', 1n, 20)] });
  t.same(rows(r), [
    ['b', 4n, true, false],
    ['c', 3n, false, false],
    ['a', 3n, false, false],
  ]);
  t.same(shares(r), ['b=1/3', 'c=1/3', 'a=1/3']);
  t.equal(r.undistributed, 0n);
  t.equal(r.totalPoints, 3n);

  const sameTime = splitPool({ pool: 10n, contributors: [c('c', 1n, 5), c('b', 1n, 5), c('a', 1n, 5)] });
  t.same(
    rows(sameTime),
    [
      ['a', 4n, true, false],
      ['b', 3n, false, false],
      ['c', 3n, false, false],
    ],
    'then the smaller user id',
  );

  const twoUnits = splitPool({ pool: 11n, contributors: [c('a', 1n, 30), c('b', 1n, 10), c('c', 1n, 20)] });
  t.same(rows(twoUnits), [
    ['b', 4n, true, false],
    ['c', 4n, true, false],
    ['a', 3n, false, false],
  ]);
});

t.test('user ids compare by code units, not by locale', async (t) => {
  const r = splitPool({ pool: 4n, contributors: [c('a', 1n), c('B', 1n), c('é', 1n)] });
  t.same(
    rows(r).map((x) => x[0]),
    ['B', 'a', 'é'],
  );
  t.same(
    rows(r).map((x) => x[1]),
    [2n, 1n, 1n],
  );
});

t.test('pool 100 over 2/3/5 splits exactly; pool 101 gives the unit to the largest remainder', async (t) => {
  const exact = splitPool({ pool: 100n, contributors: [c('two', 2n), c('three', 3n), c('five', 5n)] });
  t.same(rows(exact), [
    ['five', 50n, false, false],
    ['three', 30n, false, false],
    ['two', 20n, false, false],
  ]);
  t.same(shares(exact), ['five=1/2', 'three=3/10', 'two=1/5']);

  // 20.2, 30.3, 50.5: remainders 2, 3, 5 (tenths), so "five" gets the unit although "two" came first.
  const oneOver = splitPool({ pool: 101n, contributors: [c('two', 2n, 1), c('three', 3n, 2), c('five', 5n, 3)] });
  t.same(rows(oneOver), [
    ['five', 51n, true, false],
    ['three', 30n, false, false],
    ['two', 20n, false, false],
  ]);
});

t.test('no payees: no rows, the whole pool stays undistributed', async (t) => {
  const none = splitPool({ pool: 500n, contributors: [] });
  t.same(none.payouts, []);
  t.equal(none.undistributed, 500n);
  t.equal(none.totalPoints, 0n);

  const compensated = splitPool({ pool: 500n, contributors: [c('a', 0n), c('b', -3n)] });
  t.same(compensated.payouts, []);
  t.equal(compensated.undistributed, 500n);

  const capped = splitPool({ pool: 500n, contributors: [], policy: { capBasisPoints: 2500 } });
  t.same(capped.payouts, []);
  t.equal(capped.undistributed, 500n);
  t.equal(capped.cap, 125n);

  t.equal(splitPool({ pool: 0n, contributors: [] }).undistributed, 0n);
});

t.test('zero pool: every payee gets 0 with their proportional share, none rounded up', async (t) => {
  for (const policy of [{}, { capBasisPoints: 1000 }, { minPoints: 1n }]) {
    const r = splitPool({ pool: 0n, contributors: [c('a', 1n, 2), c('b', 2n, 1)], policy });
    t.same(rows(r), [
      ['b', 0n, false, false],
      ['a', 0n, false, false],
    ]);
    t.same(shares(r), ['b=2/3', 'a=1/3']);
    t.equal(r.undistributed, 0n);
  }
});

t.test('a single payee gets the whole pool, or the cap with the rest undistributed', async (t) => {
  const alone = splitPool({ pool: 999n, contributors: [c('solo', 7n), c('gone', -7n)] });
  t.same(rows(alone), [['solo', 999n, false, false]]);
  t.same(shares(alone), ['solo=1/1']);
  t.equal(alone.undistributed, 0n);

  const capped = splitPool({ pool: 1000n, contributors: [c('solo', 7n)], policy: { capBasisPoints: 4000 } });
  t.same(rows(capped), [['solo', 400n, false, true]]);
  t.same(shares(capped), ['solo=2/5']);
  t.equal(capped.undistributed, 600n);
});

t.test('contributors at zero or below are not payees and do not count in W', async (t) => {
  const r = splitPool({ pool: 10n, contributors: [c('a', 1n), c('zero', 0n), c('minus', -4n), c('b', 4n)] });
  t.same(rows(r), [
    ['b', 8n, false, false],
    ['a', 2n, false, false],
  ]);
  t.equal(r.totalPoints, 5n);
});

t.test('minimum policy: below minPoints does not qualify; the others share the whole pool', async (t) => {
  // 100·4/9 = 44.4, 100·5/9 = 55.5: remainders 4 and 5 (ninths), so "c" gets the unit.
  const r = splitPool({ pool: 100n, contributors: [c('a', 3n), c('b', 4n), c('c', 5n)], policy: { minPoints: 4n } });
  t.same(rows(r), [
    ['c', 56n, true, false],
    ['b', 44n, false, false],
  ]);
  t.same(shares(r), ['c=5/9', 'b=4/9']);
  t.same(r.policy, { minPoints: 4n, capBasisPoints: null });

  const nobody = splitPool({ pool: 100n, contributors: [c('a', 3n)], policy: { minPoints: 4n } });
  t.same(nobody.payouts, []);
  t.equal(nobody.undistributed, 100n);

  t.same(
    rows(splitPool({ pool: 10n, contributors: [c('a', 1n), c('z', 0n)], policy: { minPoints: 0n } })),
    [['a', 10n, false, false]],
    'a minimum of 0 still needs points above 0',
  );
});

t.test('cap: the excess is shared among the others in proportion to their points', async (t) => {
  // 600 > C = 400; the 600 left go 2:1:1 over the other 40 points.
  const r = splitPool({
    pool: 1000n,
    contributors: [c('a', 60n), c('b', 20n), c('c', 10n, 1), c('d', 10n, 2)],
    policy: { capBasisPoints: 4000 },
  });
  t.same(rows(r), [
    ['a', 400n, false, true],
    ['b', 300n, false, false],
    ['c', 150n, false, false],
    ['d', 150n, false, false],
  ]);
  t.same(shares(r), ['a=2/5', 'b=3/10', 'c=3/20', 'd=3/20']);
  t.equal(r.cap, 400n);
  t.equal(r.undistributed, 0n);
});

t.test('cap: water-filling repeats until nobody exceeds the cap', async (t) => {
  // C = 35. "a" (50) is capped; the 65 left over 50 points give "b" 39 > 35, so "b" is capped too;
  // the last 30 go 15 and 15.
  const r = splitPool({
    pool: 100n,
    contributors: [c('a', 50n), c('b', 30n), c('c', 10n), c('d', 10n)],
    policy: { capBasisPoints: 3500 },
  });
  t.same(rows(r), [
    ['a', 35n, false, true],
    ['b', 35n, false, true],
    ['c', 15n, false, false],
    ['d', 15n, false, false],
  ]);
  t.same(shares(r), ['a=7/20', 'b=7/20', 'c=3/20', 'd=3/20']);
});

t.test('cap: the redistributed part is rounded with the same remainder rule', async (t) => {
  // C = 50; the 50 left over three equal members: 16 each and 2 units, by first contribution.
  const r = splitPool({
    pool: 100n,
    contributors: [c('big', 7n), c('x', 1n, 3), c('y', 1n, 1), c('z', 1n, 2)],
    policy: { capBasisPoints: 5000 },
  });
  t.same(rows(r), [
    ['big', 50n, false, true],
    ['y', 17n, true, false],
    ['z', 17n, true, false],
    ['x', 16n, false, false],
  ]);
  t.same(shares(r), ['big=1/2', 'y=1/6', 'z=1/6', 'x=1/6']);
});

t.test('cap: when everyone is capped the rest stays in the pool as undistributed', async (t) => {
  const r = splitPool({ pool: 100n, contributors: [c('a', 1n), c('b', 9n)], policy: { capBasisPoints: 3000 } });
  t.same(
    rows(r),
    [
      ['a', 30n, false, true],
      ['b', 30n, false, true],
    ],
    'equal amounts: first contribution, then id',
  );
  t.same(shares(r), ['a=3/10', 'b=3/10']);
  t.equal(r.undistributed, 40n);

  const zeroCap = splitPool({ pool: 100n, contributors: [c('a', 1n), c('b', 9n)], policy: { capBasisPoints: 0 } });
  t.same(rows(zeroCap), [
    ['a', 0n, false, true],
    ['b', 0n, false, true],
  ]);
  t.same(shares(zeroCap), ['a=0/1', 'b=0/1']);
  t.equal(zeroCap.undistributed, 100n);

  // C = floor(7·3333/10000) = 2: three payees take 6 of 7.
  const flooredCap = splitPool({
    pool: 7n,
    contributors: [c('a', 1n), c('b', 1n), c('c', 1n)],
    policy: { capBasisPoints: 3333 },
  });
  t.same(
    rows(flooredCap).map((x) => x[1]),
    [2n, 2n, 2n],
  );
  t.equal(flooredCap.undistributed, 1n);
});

t.test('cap: a cap that binds nobody changes nothing; minimum and cap combine', async (t) => {
  const contributors = [c('a', 2n), c('b', 3n), c('d', 5n)];
  const plain = splitPool({ pool: 101n, contributors });
  // 5100: C = 51, and "d" reaches it exactly by rounding up 50.5.
  for (const capBasisPoints of [10000, 5100]) {
    t.same(rows(splitPool({ pool: 101n, contributors, policy: { capBasisPoints } })), rows(plain));
  }
  // An entitlement of exactly C is not capped: 50 of 100 at a 50% cap.
  t.same(rows(splitPool({ pool: 100n, contributors: [c('a', 1n), c('b', 1n)], policy: { capBasisPoints: 5000 } })), [
    ['a', 50n, false, false],
    ['b', 50n, false, false],
  ]);

  // "a" does not qualify; of b (3) and d (5), d is capped at 60; b gets the other 40.
  const both = splitPool({ pool: 100n, contributors, policy: { minPoints: 3n, capBasisPoints: 6000 } });
  t.same(rows(both), [
    ['d', 60n, false, true],
    ['b', 40n, false, false],
  ]);
  t.same(both.policy, { minPoints: 3n, capBasisPoints: 6000 });
});

t.test('the output does not depend on the input order', async (t) => {
  const contributors = [c('a', 3n, 4), c('b', 1n, 1), c('c', 1n, 1), c('d', 7n, 2), c('e', 0n, 0), c('f', 2n, 3)];
  for (const policy of [{}, { capBasisPoints: 3000 }, { minPoints: 2n }]) {
    const forward = splitPool({ pool: 1001n, contributors, policy });
    const backward = splitPool({ pool: 1001n, contributors: [...contributors].reverse(), policy });
    t.same(backward, forward);
    t.equal(splitResultHash(backward), splitResultHash(forward));
  }
});

t.test('contributors may come from any iterable', async (t) => {
  function* stream() {
    yield c('a', 1n);
    yield c('b', 1n);
  }
  t.same(rows(splitPool({ pool: 3n, contributors: stream() })), [
    ['a', 2n, true, false],
    ['b', 1n, false, false],
  ]);
});

t.test('bad input is refused', async (t) => {
  const ok = [c('a', 1n)];
  t.throws(() => splitPool({ pool: -1n, contributors: ok }), RangeError);
  t.throws(() => splitPool({ pool: 10 as unknown as bigint, contributors: ok }), RangeError);
  t.throws(() => splitPool({ pool: 10n, contributors: [c('a', 1n), c('a', 2n)] }), {
    message: /duplicate contributor a/,
  });
  t.throws(() => splitPool({ pool: 10n, contributors: [c('a', 1 as unknown as bigint)] }), TypeError);
  for (const userId of ['', 'a,b', 'a\nb', 'a\r']) {
    t.throws(() => splitPool({ pool: 10n, contributors: [c(userId, 1n)] }), RangeError, JSON.stringify(userId));
  }
  for (const at of [1.5, Number.NaN, 2 ** 53]) {
    t.throws(() => splitPool({ pool: 10n, contributors: [c('a', 1n, at)] }), RangeError, String(at));
  }
  for (const capBasisPoints of [-1, 10001, 0.5, Number.NaN]) {
    t.throws(
      () => splitPool({ pool: 10n, contributors: ok, policy: { capBasisPoints } }),
      RangeError,
      String(capBasisPoints),
    );
  }
  t.throws(() => splitPool({ pool: 10n, contributors: ok, policy: { minPoints: -1n } }), RangeError);
});

t.test('the result hash is SHA-256 of the documented canonical text', async (t) => {
  const r = splitPool({ pool: 10n, contributors: [c('a', 1n, 1), c('b', 1n, 2), c('c', 1n, 3)] });
  const text = [
    'circle-actions/settlement-split/v1',
    'pool=10',
    'minPoints=-',
    'capBasisPoints=-',
    'undistributed=0',
    'a,1,4,1/3,true',
    'b,1,3,1/3,false',
    'c,1,3,1/3,false',
    '',
  ].join('\n');
  t.equal(canonicalSplitText(r), text);
  t.equal(splitResultHash(r), createHash('sha256').update(text).digest('hex'));
  t.equal(
    splitResultHash(r),
    'd033518346da4b2c3aebc23670c1a2d3a880ddfd9f95a8fe1ae71e045fbf57c7',
    'frozen: changing the format changes every stored hash',
  );

  const capped = splitPool({
    pool: 100n,
    contributors: [c('a', 1n), c('b', 9n), c('x', 0n)],
    policy: { minPoints: 1n, capBasisPoints: 3000 },
  });
  t.equal(
    canonicalSplitText(capped),
    [
      'circle-actions/settlement-split/v1',
      'pool=100',
      'minPoints=1',
      'capBasisPoints=3000',
      'undistributed=40',
      'a,1,30,3/10,false',
      'b,9,30,3/10,false',
      '',
    ].join('\n'),
  );

  const empty = splitPool({ pool: 5n, contributors: [] });
  t.equal(
    canonicalSplitText(empty),
    'circle-actions/settlement-split/v1\npool=5\nminPoints=-\ncapBasisPoints=-\nundistributed=5\n',
  );

  const tampered: SplitResult = {
    ...r,
    payouts: r.payouts.map((p, i) => (i === 0 ? { ...p, amount: p.amount - 1n } : p)),
  };
  t.not(splitResultHash(tampered), splitResultHash(r));
  const badId: SplitResult = { ...r, payouts: [{ ...r.payouts[0]!, userId: 'a,1' }] };
  t.throws(() => splitResultHash(badId), RangeError);
});

t.test('100,000 contributors complete and sum exactly', async (t) => {
  const n = 100_000;
  const contributors = Array.from({ length: n }, (_, i) =>
    c(
      `user-${String((i * 7919) % n).padStart(6, '0')}`,
      BigInt(((i * 104729) % 2003) - 3) * (i % 97 === 0 ? 1_000_000n : 1n),
      1_700_000_000_000_000 + (i % 4099),
    ),
  );
  const payees = contributors.filter((x) => x.points > 0n).length;
  const pool = 2n ** 53n + 12_345n;
  for (const policy of [{}, { capBasisPoints: 1 }, { minPoints: 1000n, capBasisPoints: 3 }]) {
    const r = splitPool({ pool, contributors, policy });
    const total = r.payouts.reduce((sum, p) => sum + p.amount, 0n);
    t.equal(
      total + r.undistributed,
      pool,
      JSON.stringify(policy, (_, v) => (typeof v === 'bigint' ? `${v}` : v)),
    );
    if (!('minPoints' in policy)) t.equal(r.payouts.length, payees);
    if (r.cap !== null)
      t.ok(
        r.payouts.every((p) => p.amount <= r.cap!),
        'nobody over the cap',
      );
    t.match(splitResultHash(r), /^[0-9a-f]{64}$/);
  }
});

// ---------------------------------------------------------------------------------------------
// Properties. The reference below is the rules taken literally, with no care for speed: it caps
// every payee over the cap at once and repeats, and ranks remainders by cross-multiplying fractions.

interface Expected {
  readonly amount: bigint;
  /** The exact entitlement in minor units, num/den. */
  readonly num: bigint;
  readonly den: bigint;
  readonly roundedUp: boolean;
  readonly capped: boolean;
}

function referenceSplit(pool: bigint, contributors: readonly SplitContributor[], policy: SplitPolicy) {
  const payees = contributors.filter(
    (x) => x.points > 0n && (policy.minPoints === undefined || x.points >= policy.minPoints),
  );
  const cap = policy.capBasisPoints === undefined ? null : (pool * BigInt(policy.capBasisPoints)) / 10000n;
  const capped = new Set<string>();
  let free = payees;
  let rest = pool;
  let restPoints = 0n;
  for (;;) {
    free = payees.filter((x) => !capped.has(x.userId));
    rest = pool - BigInt(capped.size) * (cap ?? 0n);
    restPoints = free.reduce((s, x) => s + x.points, 0n);
    const over = cap === null ? [] : free.filter((x) => rest * x.points > cap * restPoints);
    if (over.length === 0) break;
    for (const x of over) capped.add(x.userId);
  }
  const undistributed = free.length === 0 ? rest : 0n;
  const entitlement = new Map<string, { num: bigint; den: bigint }>();
  for (const x of payees) {
    entitlement.set(
      x.userId,
      capped.has(x.userId) ? { num: cap!, den: 1n } : { num: rest * x.points, den: restPoints },
    );
  }
  const floorOf = (x: SplitContributor) => entitlement.get(x.userId)!.num / entitlement.get(x.userId)!.den;
  let units = pool - undistributed - payees.reduce((s, x) => s + floorOf(x), 0n);
  const fraction = (x: SplitContributor) => {
    const e = entitlement.get(x.userId)!;
    return { num: e.num % e.den, den: e.den };
  };
  const ranked = [...free].sort((a, b) => {
    const fa = fraction(a);
    const fb = fraction(b);
    const d = fb.num * fa.den - fa.num * fb.den;
    if (d !== 0n) return d > 0n ? 1 : -1;
    if (a.firstContributionAt !== b.firstContributionAt) return a.firstContributionAt - b.firstContributionAt;
    return a.userId < b.userId ? -1 : 1;
  });
  const up = new Set<string>();
  for (const x of ranked) if (units-- > 0n) up.add(x.userId);
  const expected = new Map<string, Expected>();
  for (const x of payees) {
    const e = entitlement.get(x.userId)!;
    const roundedUp = up.has(x.userId);
    expected.set(x.userId, {
      amount: floorOf(x) + (roundedUp ? 1n : 0n),
      ...e,
      roundedUp,
      capped: capped.has(x.userId),
    });
  }
  return { expected, undistributed, cap };
}

const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));

const userIdArb = fc.oneof(
  fc.uuid(),
  fc.string({ unit: fc.constantFrom('a', 'b', 'B', '0', '-', 'é', '😀'), minLength: 1, maxLength: 3 }),
);
// Few distinct instants, so the tie-break by time and then by id both get exercised.
const atArb = fc.oneof(
  fc.integer({ min: 0, max: 3 }),
  fc.integer({ min: 0, max: 1000 }).map((x) => 1_700_000_000_000_000 + x),
);
const contributorsArb = (points: fc.Arbitrary<bigint>, maxLength: number) =>
  fc.uniqueArray(fc.record({ userId: userIdArb, points, firstContributionAt: atArb }), {
    selector: (x) => x.userId,
    maxLength,
    size: 'max',
  });

// Mostly small totals (many equal points, some at or below zero), a few much larger, so caps bind some.
const smallPoints = fc.oneof(
  { arbitrary: fc.bigInt({ min: -3n, max: 20n }), weight: 4 },
  { arbitrary: fc.bigInt({ min: 21n, max: 300n }), weight: 1 },
);
const largePoints = fc.oneof(
  fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }),
  fc.bigInt({ min: 2n ** 40n - 100n, max: 2n ** 40n }),
  fc.bigInt({ min: 1n, max: 2n ** 20n }),
);
const smallPool = fc.bigInt({ min: 0n, max: 50n });
const largePool = fc.oneof(
  fc.bigInt({ min: 2n ** 53n - 2n ** 20n, max: 2n ** 53n + 2n ** 20n }),
  fc.constantFrom(2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n),
);
const policyArb: fc.Arbitrary<SplitPolicy> = fc.record(
  {
    minPoints: fc.oneof(
      { arbitrary: fc.bigInt({ min: 0n, max: 15n }), weight: 3 },
      { arbitrary: fc.bigInt({ min: 0n, max: 2n ** 40n }), weight: 1 },
    ),
    capBasisPoints: fc.oneof(
      fc.integer({ min: 0, max: 10000 }),
      fc.integer({ min: 1000, max: 4000 }),
      fc.integer({ min: 1, max: 1500 }),
    ),
  },
  { requiredKeys: [] },
);

const caseArb = fc.oneof(
  fc.record({ pool: smallPool, contributors: contributorsArb(smallPoints, 20), policy: policyArb }),
  fc.record({
    pool: fc.oneof(smallPool, largePool),
    contributors: contributorsArb(fc.oneof(smallPoints, largePoints), 30),
    policy: policyArb,
  }),
);
const largeCaseArb = fc.record({ pool: largePool, contributors: contributorsArb(largePoints, 40), policy: policyArb });

const sum = (payouts: readonly Payout[]) => payouts.reduce((s, p) => s + p.amount, 0n);

/** The invariants every result must satisfy, whatever the input. */
function assertInvariants(
  pool: bigint,
  contributors: readonly SplitContributor[],
  policy: SplitPolicy,
  r: SplitResult,
) {
  const payees = contributors.filter(
    (x) => x.points > 0n && (policy.minPoints === undefined || x.points >= policy.minPoints),
  );
  assert.deepEqual(
    r.payouts.map((p) => p.userId).sort(),
    payees.map((x) => x.userId).sort(),
    'payees are exactly those qualifying',
  );
  assert.equal(
    r.totalPoints,
    payees.reduce((s, x) => s + x.points, 0n),
  );

  // Conservation.
  assert.ok(r.undistributed >= 0n);
  assert.equal(sum(r.payouts) + r.undistributed, pool);
  if (r.undistributed > 0n)
    assert.ok(
      r.payouts.every((p) => p.capped),
      'only an all-capped pool keeps something',
    );

  // Each amount is P·share rounded down, or up when roundedUp; shares in lowest terms.
  let floors = 0n;
  for (const p of r.payouts) {
    const { numerator: n, denominator: d } = p.share;
    assert.ok(d > 0n && n >= 0n && gcd(n, d) === 1n, `share ${n}/${d} in lowest terms`);
    const exact = pool * n;
    const floor = exact / d;
    floors += floor;
    assert.equal(p.amount, p.roundedUp ? floor + 1n : floor);
    if (p.roundedUp) assert.ok(exact % d !== 0n, 'only an inexact share is rounded up');
    assert.ok(p.amount * d <= exact + d - 1n && p.amount * d > exact - d, 'floor or ceil, by cross-multiplication');
  }
  const up = r.payouts.filter((p) => p.roundedUp).length;
  assert.equal(BigInt(up), pool - r.undistributed - floors, 'one rounded-up row per remainder unit');
  assert.ok(up === 0 || up < r.payouts.length);

  // The cap.
  const cap = policy.capBasisPoints === undefined ? null : (pool * BigInt(policy.capBasisPoints)) / 10000n;
  assert.equal(r.cap, cap);
  if (cap === null) {
    assert.ok(r.payouts.every((p) => !p.capped));
    // Plain proportional: share = w/W.
    for (const p of r.payouts) assert.equal(p.share.numerator * r.totalPoints, p.points * p.share.denominator);
  } else {
    const capped = r.payouts.filter((p) => p.capped);
    const free = r.payouts.filter((p) => !p.capped);
    for (const p of r.payouts) assert.ok(p.amount <= cap, `${p.amount} <= cap ${cap}`);
    for (const p of capped) assert.equal(p.amount, cap);
    for (const p of free)
      assert.ok(pool * p.share.numerator <= cap * p.share.denominator, 'uncapped entitlement within the cap');
    const minCapped = capped.reduce<bigint | null>((m, p) => (m === null || p.points < m ? p.points : m), null);
    if (minCapped !== null)
      assert.ok(
        free.every((p) => p.points < minCapped),
        'the capped are those with the most points',
      );
    // The uncapped share in proportion to their points: share/points equal across them.
    for (let i = 1; i < free.length; i++) {
      const a = free[i - 1]!;
      const b = free[i]!;
      assert.equal(
        a.share.numerator * b.share.denominator * b.points,
        b.share.numerator * a.share.denominator * a.points,
      );
    }
  }

  // Output order: amount desc, then first contribution, then user id.
  const at = new Map(contributors.map((x) => [x.userId, x.firstContributionAt]));
  for (let i = 1; i < r.payouts.length; i++) {
    const a = r.payouts[i - 1]!;
    const b = r.payouts[i]!;
    const inOrder =
      a.amount > b.amount ||
      (a.amount === b.amount &&
        (at.get(a.userId)! < at.get(b.userId)! || (at.get(a.userId) === at.get(b.userId) && a.userId < b.userId)));
    assert.ok(inOrder, `${a.userId} before ${b.userId}`);
  }
}

function assertMatchesReference(
  pool: bigint,
  contributors: readonly SplitContributor[],
  policy: SplitPolicy,
  r: SplitResult,
) {
  const ref = referenceSplit(pool, contributors, policy);
  assert.equal(r.undistributed, ref.undistributed);
  assert.equal(r.payouts.length, ref.expected.size);
  for (const p of r.payouts) {
    const e = ref.expected.get(p.userId);
    assert.ok(e, `${p.userId} expected as a payee`);
    assert.equal(p.amount, e.amount, `amount of ${p.userId}`);
    assert.equal(p.roundedUp, e.roundedUp, `roundedUp of ${p.userId}`);
    assert.equal(p.capped, e.capped, `capped of ${p.userId}`);
    if (pool > 0n) assert.equal(pool * p.share.numerator * e.den, e.num * p.share.denominator, `share of ${p.userId}`);
    else
      assert.equal(
        p.share.numerator * r.totalPoints,
        p.points * p.share.denominator,
        `share of ${p.userId} in an empty pool`,
      );
  }
}

t.test('property: the rules hold and the split matches the naive reference', async (t) => {
  fc.assert(
    fc.property(caseArb, ({ pool, contributors, policy }) => {
      const r = splitPool({ pool, contributors, policy });
      assertInvariants(pool, contributors, policy, r);
      assertMatchesReference(pool, contributors, policy, r);
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 runs');
});

t.test('property: large values (pools near 2^53, points up to 2^40) stay exact', async (t) => {
  fc.assert(
    fc.property(largeCaseArb, ({ pool, contributors, policy }) => {
      const r = splitPool({ pool, contributors, policy });
      assertInvariants(pool, contributors, policy, r);
      assertMatchesReference(pool, contributors, policy, r);
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 runs');
});

t.test('property: the result and its hash do not depend on the input order and are repeatable', async (t) => {
  const shuffled = caseArb.chain((x) =>
    fc.tuple(
      fc.constant(x),
      fc.shuffledSubarray(x.contributors, { minLength: x.contributors.length, maxLength: x.contributors.length }),
    ),
  );
  fc.assert(
    fc.property(shuffled, ([{ pool, contributors, policy }, permuted]) => {
      const r = splitPool({ pool, contributors, policy });
      const again = splitPool({ pool, contributors, policy });
      const fromPermuted = splitPool({ pool, contributors: permuted, policy });
      assert.deepEqual(again, r);
      assert.deepEqual(fromPermuted, r);
      assert.equal(splitResultHash(fromPermuted), splitResultHash(r));
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 runs');
});

t.test('property: with a cap nobody exceeds it and the sums stay exact, on bigger crowds', async (t) => {
  const capped = fc.record({
    pool: fc.oneof(fc.bigInt({ min: 0n, max: 10_000n }), largePool),
    contributors: contributorsArb(fc.oneof(smallPoints, fc.bigInt({ min: 1n, max: 2n ** 40n })), 200),
    // Around 1/n, where the cap binds some and not others.
    policy: fc.record({
      capBasisPoints: fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 50, max: 600 })),
    }),
  });
  fc.assert(
    fc.property(capped, ({ pool, contributors, policy }) => {
      const r = splitPool({ pool, contributors, policy });
      assertInvariants(pool, contributors, policy, r);
      assertMatchesReference(pool, contributors, policy, r);
    }),
    { numRuns: 300 },
  );
  t.pass('300 runs');
});
