// Calendar days of a challenge, as plain functions over instants and IANA time zones (Intl only,
// no date library). A challenge day in zone Z with day start S (minutes) begins S real minutes
// after the first instant of that local date in Z (its midnight, or the end of a DST gap that
// swallows midnight). Counting real minutes keeps the boundary monotonic in time: on the days the
// clocks change, its wall-clock reading moves with the change (S = 120 on New York's March DST
// day begins at 03:00 EDT, two hours after midnight) instead of a day ending twice in autumn.

/** A local calendar date, 'YYYY-MM-DD'. */
export type LocalDate = string;

const DAY_MS = 86_400_000;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The first year a challenge date may fall in. */
export const FIRST_YEAR = 1900;
/**
 * The last year a challenge date may fall in. A challenge is worked out a day beyond its dates (it
 * ends when the day after its last begins; streaks are read on that day afterwards), and a date
 * past 9999-12-31 no longer has four digits, so no date of the year 9999 itself is taken.
 */
export const LAST_YEAR = 9998;
/** The range as words, for error messages. */
export const DATE_RANGE = `${FIRST_YEAR}-01-01 to ${LAST_YEAR}-12-31`;

/** Whether `text` is a real calendar date in 'YYYY-MM-DD' form (2026-02-30 is not), FIRST_YEAR to LAST_YEAR. */
export function isLocalDate(text: string): boolean {
  const m = DATE.exec(text);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (y < FIRST_YEAR || y > LAST_YEAR) return false;
  const back = new Date(Date.UTC(y, mo - 1, d));
  return back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d;
}

/** Days since 1970-01-01 of a local date: arithmetic on dates without any time zone. */
export function dayNumber(date: LocalDate): number {
  const m = DATE.exec(date);
  if (!m) throw new Error(`not a date: ${date}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / DAY_MS;
}

export function fromDayNumber(day: number): LocalDate {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

export const addDays = (date: LocalDate, days: number): LocalDate => fromDayNumber(dayNumber(date) + days);

/** Whole days from `a` to `b` (positive when b is later). */
export const daysBetween = (a: LocalDate, b: LocalDate): number => dayNumber(b) - dayNumber(a);

// Formatting is the costly part of Intl: one formatter per zone, reused.
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // en-CA formats dates as YYYY-MM-DD.
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The local calendar date of an instant in a zone. */
export function localDateAt(instant: number, timeZone: string): LocalDate {
  return formatterFor(timeZone).format(instant);
}

/** The challenge day an instant belongs to: the local date `dayStartsAt` minutes earlier. */
export function challengeDayAt(instant: Date | number, timeZone: string, dayStartsAt: number): LocalDate {
  return localDateAt(Number(instant) - dayStartsAt * 60_000, timeZone);
}

/**
 * The first instant of a challenge day: the first instant whose local date is `date`, plus
 * `dayStartsAt` minutes. Found by bisection over the 30 hours around the date's UTC midnight (every
 * zone's offset lies within -12..+14 hours), which is exact to the millisecond because the local
 * date never goes backwards in time.
 */
export function challengeDayStart(date: LocalDate, timeZone: string, dayStartsAt: number): Date {
  const utcMidnight = dayNumber(date) * DAY_MS;
  let lo = utcMidnight - 15 * 3_600_000; // local date still before `date` everywhere
  let hi = utcMidnight + 15 * 3_600_000; // local date already `date` (or later) everywhere
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (localDateAt(mid, timeZone) >= date) hi = mid;
    else lo = mid;
  }
  return new Date(hi + dayStartsAt * 60_000);
}
