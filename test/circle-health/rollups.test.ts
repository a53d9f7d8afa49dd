import t from 'tap';
import fc from 'fast-check';
import { LOOKBACK_DAYS, type MemberActivity } from '../../src/circle-health/figures.js';
import {
  DAYS_PER_MASK,
  daysFromMasks,
  foldKind,
  masksFromDays,
  rollupsServe,
  withTail,
  type TailActivity,
} from '../../src/circle-health/rollups.js';

// The rules of the daily rollups without a database: when rollups may answer, what a fold does,
// and that rollups plus the tail of rows not folded yet add up to the same as all rows at once,
// however the rows are split between them.

const SNAPSHOT = '100:105:101,103';

t.test('rollups answer only when folded, and only for the zone they were built in', async (t) => {
  t.notOk(rollupsServe(undefined, 'UTC'), 'never folded');
  t.notOk(rollupsServe({ foldedThrough: null, timezone: null }, 'UTC'), 'watermark created, no fold committed');
  t.ok(rollupsServe({ foldedThrough: SNAPSHOT, timezone: 'Asia/Shanghai' }, 'Asia/Shanghai'));
  t.notOk(
    rollupsServe({ foldedThrough: SNAPSHOT, timezone: 'Asia/Shanghai' }, 'Pacific/Honolulu'),
    'the owner changed the zone: the days are wrong until rebuilt',
  );
  t.equal(foldKind(undefined, 'UTC'), 'rebuild');
  t.equal(foldKind({ foldedThrough: null, timezone: null }, 'UTC'), 'rebuild');
  t.equal(foldKind({ foldedThrough: SNAPSHOT, timezone: 'UTC' }, 'UTC'), 'incremental');
  t.equal(foldKind({ foldedThrough: SNAPSHOT, timezone: 'UTC' }, 'Europe/Paris'), 'rebuild');
});

t.test('the tail adds points and days; a day both hold counts once; members keep their order', async (t) => {
  const members: MemberActivity[] = [
    { userId: 'a', handle: 'ann', points: 10, activeDaysAgo: [0, 3] },
    { userId: 'b', handle: 'bob', points: 0, activeDaysAgo: [] },
    { userId: 'c', handle: 'cat', points: 5, activeDaysAgo: [2] },
  ];
  const tail = new Map<string, TailActivity>([
    ['a', { points: -4, daysAgo: [0, 1] }],
    ['b', { points: 7, daysAgo: [5] }],
    ['z', { points: 9, daysAgo: [0] }], // a former member's late row: not a current member, not counted
  ]);
  t.same(withTail(members, tail), [
    { userId: 'a', handle: 'ann', points: 6, activeDaysAgo: [0, 1, 3] },
    { userId: 'b', handle: 'bob', points: 7, activeDaysAgo: [5] },
    { userId: 'c', handle: 'cat', points: 5, activeDaysAgo: [2] },
  ]);
  t.same(withTail(members, new Map()), members, 'no tail: the rollups as they are');
});

interface Row {
  user: number;
  daysAgo: number;
  points: number;
  /** Folded before the report (in the rollups) or committed since (in the tail). */
  folded: boolean;
}

/** What the report reads for some rows: per current member, the points and distinct days. */
function aggregate(
  rows: readonly Row[],
  users: number,
): { members: MemberActivity[]; byUser: Map<string, TailActivity> } {
  const members = Array.from({ length: users }, (_, u): MemberActivity => {
    const own = rows.filter((r) => r.user === u);
    return {
      userId: `u${u}`,
      handle: `h${u}`,
      points: own.reduce((sum, r) => sum + r.points, 0),
      activeDaysAgo: [...new Set(own.map((r) => r.daysAgo))].sort((a, b) => a - b),
    };
  });
  const byUser = new Map(
    members
      .filter((m) => m.activeDaysAgo.length > 0)
      .map((m) => [m.userId, { points: m.points, daysAgo: m.activeDaysAgo }]),
  );
  return { members, byUser };
}

t.test('rollups plus tail equal every row read at once, however the rows are split', async (t) => {
  const row = fc.record({
    user: fc.integer({ min: 0, max: 5 }),
    daysAgo: fc.integer({ min: 0, max: 89 }),
    points: fc.integer({ min: -50, max: 500 }),
    folded: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(row, { maxLength: 60 }), (rows) => {
      const all = aggregate(rows, 6).members;
      const rolledUp = aggregate(
        rows.filter((r) => r.folded),
        6,
      ).members;
      const tail = aggregate(
        rows.filter((r) => !r.folded),
        6,
      ).byUser;
      t.same(withTail(rolledUp, tail), all);
    }),
    { numRuns: 300 },
  );
});

t.test('active days travel as bit masks of 30 days and come back as the same days', async (t) => {
  t.ok(3 * DAYS_PER_MASK >= LOOKBACK_DAYS, 'three masks cover every day a figure looks at');
  t.same(daysFromMasks([0b101, 0, 1 << 29]), [0, 2, 89]);
  t.same(masksFromDays([0, 2, 89], 3), [0b101, 0, 1 << 29]);
  t.same(masksFromDays([-1, 90], 3), [0, 0, 0], 'days after today or past the look-back are left out');
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 0, max: LOOKBACK_DAYS - 1 }), { maxLength: 90 }), (days) => {
      t.same(
        daysFromMasks(masksFromDays(days, 3)),
        [...days].sort((a, b) => a - b),
      );
    }),
    { numRuns: 200 },
  );
});
