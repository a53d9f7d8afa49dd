import t from 'tap';
import fc from 'fast-check';
import {
  absenceFactor,
  activeMemberCount,
  addDays,
  engagementLevel,
  engagementLevels,
  gini,
  memberFigures,
  roundRatio,
  seedMembers,
  topFifthShare,
  weeklyCounts,
  type MemberActivity,
} from '../../src/circle-health/figures.js';

// The health figures on a constructed circle whose answers are worked out by hand in the comments,
// then the concentration figures checked against their textbook definitions on random inputs.

const member = (handle: string, points: number, activeDaysAgo: number[]): MemberActivity => ({
  userId: `id-${handle}`,
  handle,
  points,
  activeDaysAgo,
});
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// Ten members (the owner is never passed in). Points in the window, ascending:
// 0, 0, 0, 5, 10, 20, 40, 45, 80, 100 (total 300); one member's adjustments put them at -7.
const circle: MemberActivity[] = [
  member('ann', 100, range(0, 29)), // 30 of the last 90 days: leading; 7 of the last 7: seed
  member('bob', 80, [0, 1, 2, 3]), // 4 of the last 7: seed; participating (4 < 7 of 30)
  member('cat', 45, [2, 3, 5, 6]), // 4 of the last 7: seed, tied with bob, after him by handle
  member('dan', 40, [0, 8, 9, 10, 11, 12, 13]), // 1 of 7, 7 of 30: contributing
  member('eve', 20, [6, 7]), // 1 of 7, 2 of 30: none
  member('fay', 10, [7, 8, 40, 89]), // none of the last 7; 2 of 30: none
  member('gus', 5, [90, 91]), // nothing within 90 days (out of range): none
  member('hal', 0, []),
  member('ivy', 0, [3]), // active, no points: 1 of 7: none
  member('jon', -7, []),
];
const points = circle.map((m) => m.points);

t.test('active members: anyone active in the last 7 / 30 / 90 local days', async (t) => {
  // last 7: ann, bob, cat, dan, eve (day 6), ivy = 6; fay (day 7) is out
  t.equal(activeMemberCount(circle, 7), 6);
  // last 30: + fay = 7; gus (90, 91) and hal, jon never
  t.equal(activeMemberCount(circle, 30), 7);
  t.equal(activeMemberCount(circle, 90), 7);
});

t.test('seed members: active on 4 of the last 7 days, most active first, then by handle', async (t) => {
  t.same(seedMembers(circle), [
    { userId: 'id-ann', handle: 'ann', activeDays: 7 },
    { userId: 'id-bob', handle: 'bob', activeDays: 4 },
    { userId: 'id-cat', handle: 'cat', activeDays: 4 },
  ]);
  t.same(seedMembers([member('x', 0, [0, 1, 2])]), [], '3 of 7 days is not enough');
  t.same(seedMembers([member('x', 0, [3, 4, 5, 7, 8])]), [], 'day 7 is the eighth day back');
});

t.test('engagement levels: each member once, at the highest milestone reached', async (t) => {
  t.same(
    circle.map((m) => [m.handle, engagementLevel(m)]),
    [
      ['ann', 'leading'],
      ['bob', 'participating'],
      ['cat', 'participating'],
      ['dan', 'contributing'],
      ['eve', 'none'],
      ['fay', 'none'],
      ['gus', 'none'],
      ['hal', 'none'],
      ['ivy', 'none'],
      ['jon', 'none'],
    ],
  );
  t.same(engagementLevels(circle), { leading: 1, contributing: 1, participating: 2, none: 6 });
  t.equal(engagementLevel(member('x', 0, range(0, 28))), 'contributing', '29 of 90 days is not leading');
  t.equal(engagementLevel(member('x', 0, [...range(0, 5), 60])), 'participating', '6 of 30 is not contributing');
  t.equal(engagementLevel(member('x', 0, [10, 20, 30, 40, 50, 60, 70, 80])), 'none', '8 days spread thin');
});

t.test('contributor absence factor: the fewest members holding half the points', async (t) => {
  // descending 100, 80, ...: 100 is 1/3 of 300, 100 + 80 = 180 >= 150: two members
  t.equal(absenceFactor(points), 2);
  t.equal(absenceFactor([50, 50]), 1, 'exactly half is enough');
  t.equal(absenceFactor([1, 1, 1, 1]), 2);
  t.equal(absenceFactor([1, 1, 1]), 2, '2 of 3 equal members pass half');
  t.equal(absenceFactor([0, 0, -3]), 0, 'nobody earned anything');
  t.equal(absenceFactor([]), 0);
});

t.test('top 20% share: ceil(members / 5) members, their share of all points', async (t) => {
  // 10 members: the top 2 hold 100 + 80 = 180 of 300 = 0.6
  t.same(topFifthShare(points), { members: 2, share: 0.6 });
  // 11 members round up to 3: 100 + 80 + 45 = 225 of 300 = 0.75
  t.same(topFifthShare([...points, 0]), { members: 3, share: 0.75 });
  // 3 members round up to 1: 1 of 3 = 0.33333... -> 0.3333
  t.same(topFifthShare([1, 1, 1]), { members: 1, share: 0.3333 });
  // 2 of 3: 0.66666... -> 0.6667 (half up)
  t.same(topFifthShare([2, 1, 0]), { members: 1, share: 0.6667 });
  t.same(topFifthShare([0, 0]), { members: 1, share: 0 });
  t.same(topFifthShare([]), { members: 0, share: 0 });
});

t.test('Gini coefficient over all members, zeros included, to 4 decimals', async (t) => {
  // The ten members' holdings ascending (jon's -7 holds as 0): 0 (hal), 0 (ivy), 0 (jon), 5, 10, 20, 40, 45, 80, 100.
  // sum(i * x_i) = 4*5 + 5*10 + 6*20 + 7*40 + 8*45 + 9*80 + 10*100 = 2550
  // G = (2 * 2550 - 11 * 300) / (10 * 300) = 1800 / 3000 = 0.6
  t.equal(gini(points), 0.6);
  t.equal(gini([5, 5, 5, 5]), 0, 'equal shares');
  // [0, 0, 1]: (2 * 3 - 4 * 1) / (3 * 1) = 2/3 -> 0.6667
  t.equal(gini([0, 0, 1]), 0.6667);
  // [1, 2]: (2 * (1 + 4) - 3 * 3) / (2 * 3) = 1/6 -> 0.1667
  t.equal(gini([2, 1]), 0.1667);
  // [-5, 5] holds as [0, 5]: (2 * 10 - 3 * 5) / (2 * 5) = 0.5
  t.equal(gini([-5, 5]), 0.5);
  t.equal(gini([0, 0]), 0, 'nobody earned anything');
  t.equal(gini([]), 0);
});

t.test('the member figures of the constructed circle together', async (t) => {
  t.same(memberFigures(circle, 30), {
    activeMembers: 7,
    seedMembers: seedMembers(circle),
    absenceFactor: 2,
    topFifth: { members: 2, share: 0.6 },
    gini: 0.6,
    engagement: { leading: 1, contributing: 1, participating: 2, none: 6 },
  });
});

t.test('ratios round half up from the exact fraction', async (t) => {
  t.equal(roundRatio(1n, 8n), 0.125);
  t.equal(roundRatio(1n, 20000n), 0.0001, '0.00005 rounds up');
  t.equal(roundRatio(1n, 20001n), 0, 'just below 0.00005 rounds down');
  t.equal(roundRatio(2n, 3n), 0.6667);
  t.equal(roundRatio(0n, 7n), 0);
  t.throws(() => roundRatio(1n, 0n), RangeError);
  t.throws(() => roundRatio(-1n, 2n), RangeError);
});

t.test('local calendar days and whole weeks ending today', async (t) => {
  t.equal(addDays('2024-03-01', -1), '2024-02-29', 'leap day');
  t.equal(addDays('2023-03-01', -1), '2023-02-28');
  t.equal(addDays('2024-12-31', 1), '2025-01-01');
  t.equal(addDays('2024-03-01', -55), '2024-01-06');
  const weeks = weeklyCounts(
    '2024-03-01',
    new Map([
      [0, 1],
      [6, 2],
      [7, 3],
      [55, 4],
      [56, 100], // the ninth week back: not reported
    ]),
    8,
  );
  t.equal(weeks.length, 8);
  t.same(weeks[7], { from: '2024-02-24', to: '2024-03-01', count: 3 }, 'this week: days 0-6');
  t.same(weeks[6], { from: '2024-02-17', to: '2024-02-23', count: 3 }, 'last week: days 7-13');
  t.same(weeks[0], { from: '2024-01-06', to: '2024-01-12', count: 4 }, 'eight weeks back: days 49-55');
  t.same(
    weeks.slice(1, 6).map((w) => w.count),
    [0, 0, 0, 0, 0],
  );
});

// Textbook definitions, written as differently as possible from the module's.
const naiveGini = (xs: number[]) => {
  const v = xs.map((x) => Math.max(0, x));
  const sum = v.reduce((a, b) => a + b, 0);
  if (sum === 0) return 0;
  let diffs = 0;
  for (const a of v) for (const b of v) diffs += Math.abs(a - b);
  return diffs / (2 * v.length * sum); // mean absolute difference over twice the mean
};
const naiveAbsence = (xs: number[]) => {
  const v = xs.map((x) => Math.max(0, x));
  const sum = v.reduce((a, b) => a + b, 0);
  if (sum === 0) return 0;
  // try every group size from the smallest: can k members hold half?
  const sorted = [...v].sort((a, b) => b - a);
  for (let k = 1; ; k++) if (sorted.slice(0, k).reduce((a, b) => a + b, 0) * 2 >= sum) return k;
};

t.test('properties against the textbook definitions', async (t) => {
  const holdings = fc.array(fc.integer({ min: -50, max: 10_000 }), { maxLength: 60 });
  fc.assert(
    fc.property(holdings, (xs) => Math.abs(gini(xs) - naiveGini(xs)) <= 0.00005 + 1e-12),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(holdings, (xs) => absenceFactor(xs) === naiveAbsence(xs)),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(holdings, (xs) => {
      const { members, share } = topFifthShare(xs);
      return members === Math.ceil(xs.length / 5) && share >= 0 && share <= 1 && gini(xs) >= 0 && gini(xs) < 1;
    }),
    { numRuns: 300 },
  );
  fc.assert(
    // Order does not matter, and a member with nothing changes who holds half.
    fc.property(
      holdings,
      (xs) => gini([...xs].reverse()) === gini(xs) && absenceFactor([...xs, 0]) === absenceFactor(xs),
    ),
    { numRuns: 100 },
  );
  t.pass('300 random circles each agree with the definitions');
});
