import t from 'tap';
import fc from 'fast-check';
import { addDays, challengeDayAt, challengeDayStart, dayNumber } from '../../src/challenges/challenge-days.js';
import { streakAfter, streakFrom, streakOn, streakState } from '../../src/challenges/streaks.js';

// Streaks on calendars built by hand (make-ups filling days, freezes bridging gaps in date order,
// month and year ends), then fast-check against a deliberately naive day-by-day walk, and check-in
// calendars made from random instants in random zones, DST days included.

/** Dates from day offsets after a start date: cal('2026-12-28', 0, 1, 3) */
const cal = (start: string, ...offsets: number[]) => offsets.map((o) => addDays(start, o));

t.test('a run of consecutive days, broken by a missed day', async (t) => {
  const dates = cal('2026-03-01', 0, 1, 2, 4, 5);
  t.same(streakFrom(dates, '2026-03-07', 0), { current: 2, best: 3, freezesUsed: 0 }, 'today still open');
  t.same(streakFrom(dates, '2026-03-06', 0), { current: 2, best: 3, freezesUsed: 0 }, 'checked in today');
  t.same(streakFrom(dates, '2026-03-08', 0), { current: 0, best: 3, freezesUsed: 0 }, 'yesterday missed');
  t.same(streakFrom([], '2026-03-07', 2), { current: 0, best: 0, freezesUsed: 0 }, 'nothing yet');
});

t.test('across month and year ends', async (t) => {
  const dates = ['2026-12-30', '2026-12-31', '2027-01-01', '2027-01-02'];
  t.same(streakFrom(dates, '2027-01-03', 0), { current: 4, best: 4, freezesUsed: 0 });
  t.same(streakFrom(['2028-02-28', '2028-02-29', '2028-03-01'], '2028-03-01', 0).current, 3, 'a leap day');
  t.same(streakFrom(['2027-02-28', '2027-03-01'], '2027-03-02', 0).current, 2, 'no leap day');
});

t.test('a make-up fills its day: the run is whole again', async (t) => {
  const before = cal('2026-05-01', 0, 1, 3, 4);
  t.same(streakFrom(before, '2026-05-05', 0), { current: 2, best: 2, freezesUsed: 0 });
  const madeUp = [...before, '2026-05-03'];
  t.same(streakFrom(madeUp, '2026-05-05', 0), { current: 5, best: 5, freezesUsed: 0 }, 'in any order');
});

t.test('freezes bridge missed days in date order until used up, and earn nothing', async (t) => {
  const dates = cal('2026-06-01', 0, 1, 3, 4, 7, 8);
  // One freeze: spent on 3 June; the gap of 6-7 June is then a break.
  t.same(streakFrom(dates, '2026-06-09', 1), { current: 2, best: 4, freezesUsed: 1 });
  // Two freezes: 3 June, then 6 June; 7 June ends the run.
  t.same(streakFrom(dates, '2026-06-09', 2), { current: 2, best: 4, freezesUsed: 2 });
  // Three: every missed day bridged, the run counts check-in days only.
  t.same(streakFrom(dates, '2026-06-09', 3), { current: 6, best: 6, freezesUsed: 3 });
  // Days missed since the last check-in use freezes too, today excepted.
  t.same(streakFrom(dates, '2026-06-11', 5), { current: 6, best: 6, freezesUsed: 4 });
  t.same(streakFrom(dates, '2026-06-12', 4), { current: 0, best: 6, freezesUsed: 4 }, 'out of freezes');
  // Missed days before the first check-in or after a run ended use no freeze.
  t.same(streakFrom(cal('2026-06-01', 0, 5), '2026-06-06', 3), { current: 1, best: 1, freezesUsed: 3 });
  t.same(streakFrom(cal('2026-06-01', 0, 5, 6), '2026-06-08', 3), { current: 2, best: 2, freezesUsed: 3 });
});

t.test('a make-up returns the freeze its day had used, for a later gap', async (t) => {
  const dates = cal('2026-07-01', 0, 2, 4);
  t.same(streakFrom(dates, '2026-07-05', 1), { current: 1, best: 2, freezesUsed: 1 }, '2 July frozen, 4 July breaks');
  t.same(streakFrom([...dates, '2026-07-02'], '2026-07-05', 1), { current: 4, best: 4, freezesUsed: 1 });
});

t.test('the stored state projects to any later day like a fresh walk', async (t) => {
  const state = streakState(cal('2026-08-01', 0, 1, 2), 2);
  t.same(state, { run: 3, best: 3, freezesUsed: 0, lastDate: '2026-08-03' });
  t.same(streakOn(state, '2026-08-06', 2), { current: 3, best: 3, freezesUsed: 2 });
  t.same(streakOn(state, '2026-08-07', 2), { current: 0, best: 3, freezesUsed: 2 });
  t.same(streakOn(streakState([], 2), '2026-08-07', 2), { current: 0, best: 0, freezesUsed: 0 });
});

/** The rule read literally: every day from the first check-in to today, one at a time. */
function naiveStreak(dates: string[], today: string, freezes: number) {
  const set = new Set(dates);
  if (set.size === 0) return { current: 0, best: 0, freezesUsed: 0 };
  const first = [...set].sort()[0]!;
  let run = 0;
  let best = 0;
  let used = 0;
  for (let d = first; d <= today; d = addDays(d, 1)) {
    if (set.has(d)) {
      run++;
      best = Math.max(best, run);
    } else if (d === today) break;
    else if (run > 0 && used < freezes) used++;
    else run = 0;
  }
  return { current: run, best, freezesUsed: used };
}

const calendar = fc
  .record({
    start: fc.integer({ min: dayNumber('2000-01-01'), max: dayNumber('2040-01-01') }),
    length: fc.integer({ min: 1, max: 120 }),
    density: fc.double({ min: 0, max: 1, noNaN: true }),
    seed: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 120, maxLength: 120 }),
    todayAfter: fc.integer({ min: 0, max: 10 }),
  })
  .map(({ start, length, density, seed, todayAfter }) => {
    const first = new Date(start * 86_400_000).toISOString().slice(0, 10);
    const dates = Array.from({ length }, (_, i) => i)
      .filter((i) => seed[i]! < density)
      .map((i) => addDays(first, i));
    return { dates, today: addDays(first, length - 1 + todayAfter) };
  });

t.test('property: the streak equals a naive day-by-day walk on random calendars', async () => {
  fc.assert(
    fc.property(calendar, fc.integer({ min: 0, max: 10 }), ({ dates, today }, freezes) => {
      const shuffled = [...dates].reverse();
      const got = streakFrom(shuffled, today, freezes);
      const want = naiveStreak(dates, today, freezes);
      return got.current === want.current && got.best === want.best && got.freezesUsed === want.freezesUsed;
    }),
    { numRuns: 3000 },
  );
});

t.test('property: bounds that hold on every calendar', async () => {
  fc.assert(
    fc.property(calendar, fc.integer({ min: 0, max: 10 }), ({ dates, today }, freezes) => {
      const s = streakFrom(dates, today, freezes);
      const more = streakFrom(dates, today, freezes + 1);
      const filled = streakFrom([...dates, today], today, freezes);
      return (
        s.current <= s.best &&
        s.best <= dates.length &&
        s.freezesUsed <= freezes &&
        more.best >= s.best && // one more freeze never shortens a run
        // checking in today extends whatever run is alive
        (dates.includes(today) ? filled.current === s.current : filled.current === s.current + 1)
      );
    }),
    { numRuns: 2000 },
  );
});

const ZONES = [
  'Pacific/Kiritimati',
  'Pacific/Pago_Pago',
  'America/New_York',
  'Australia/Lord_Howe',
  'America/Santiago',
  'Asia/Kathmandu',
  'Europe/London',
  'Asia/Shanghai',
];

t.test('property: check-ins at random instants, one per challenge day in any zone, make a full run', async () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...ZONES),
      fc.integer({ min: 0, max: 360 }),
      fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2035, 0, 1) }),
      fc.array(fc.double({ min: 0, max: 0.999_999, noNaN: true }), { minLength: 1, maxLength: 60 }),
      (zone, dayStartsAt, startMs, fractions) => {
        // One instant somewhere inside each of consecutive challenge days, DST days included.
        const first = challengeDayAt(startMs, zone, dayStartsAt);
        const dates = fractions.map((f, i) => {
          const day = addDays(first, i);
          const from = challengeDayStart(day, zone, dayStartsAt).getTime();
          const to = challengeDayStart(addDays(day, 1), zone, dayStartsAt).getTime();
          return challengeDayAt(from + Math.floor(f * (to - from)), zone, dayStartsAt);
        });
        const s = streakFrom(dates, dates[dates.length - 1]!, 0);
        return s.current === fractions.length && s.best === fractions.length;
      },
    ),
    { numRuns: 500 },
  );
});

t.test('property: adding a later day to the stored state equals walking all the dates again', async () => {
  fc.assert(
    fc.property(
      calendar,
      fc.integer({ min: 0, max: 10 }),
      fc.integer({ min: 0, max: 12 }),
      ({ dates }, freezes, gap) => {
        const sorted = [...dates].sort();
        const last = sorted[sorted.length - 1];
        const next = last ? addDays(last, gap + 1) : '2030-01-01';
        const incremental = streakAfter(streakState(dates, freezes), next, freezes);
        const full = streakState([...dates, next], freezes);
        const earlier = last ? streakAfter(streakState(dates, freezes), addDays(last, -gap), freezes) : null;
        return JSON.stringify(incremental) === JSON.stringify(full) && earlier === null;
      },
    ),
    { numRuns: 2000 },
  );
});
