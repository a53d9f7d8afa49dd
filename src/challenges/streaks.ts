import { type LocalDate, dayNumber } from './challenge-days.js';

// Streaks, derived from a member's check-in dates alone: plain functions, no database, no clock.
//
// Walking the challenge's days in order: a day with a check-in (a make-up check-in too: it fills
// its day) adds one to the run; a missed day while a run is alive uses up one of the member's
// freezes, if any are left, and the run carries on without growing (a frozen day earns nothing);
// a missed day without a freeze ends the run. Days missed while no run is alive use no freeze.
// The day being evaluated (`today`) cannot be missed yet: it is still open.

export interface StreakState {
  /** The run as it stands after the member's last check-in day. */
  run: number;
  /** The longest run so far. */
  best: number;
  /** Freezes used up to the last check-in day. */
  freezesUsed: number;
  /** The last day with a check-in, or null when there is none. */
  lastDate: LocalDate | null;
}

export interface Streak {
  current: number;
  best: number;
  freezesUsed: number;
}

/**
 * Walks the check-in days up to the last one. `dates` in any order, repeats ignored. This is what
 * the service stores per member after each check-in, so reads only project it to a day
 * (`streakOn`) instead of reading every check-in again.
 */
export function streakState(dates: readonly LocalDate[], freezes: number): StreakState {
  const days = [...new Set(dates.map(dayNumber))].sort((a, b) => a - b);
  let run = 0;
  let best = 0;
  let freezesUsed = 0;
  let previous: number | undefined;
  for (const day of days) {
    if (previous !== undefined) {
      const missed = day - previous - 1;
      // Freezes are spent day by day in date order while the run is alive; if they run out
      // inside this gap, the run ends there and the later missed days of the gap cost nothing.
      if (missed > freezes - freezesUsed) {
        freezesUsed = freezes;
        run = 0;
      } else freezesUsed += missed;
    }
    run += 1;
    best = Math.max(best, run);
    previous = day;
  }
  return {
    run,
    best,
    freezesUsed,
    lastDate: previous === undefined ? null : new Date(previous * 86_400_000).toISOString().slice(0, 10),
  };
}

/**
 * The state after one more check-in day later than every day so far: what `streakState` would give
 * for all the dates, without reading them again (the usual check-in, for today). A day not after
 * the last one (a make-up) needs the full walk.
 */
export function streakAfter(state: StreakState, date: LocalDate, freezes: number): StreakState | null {
  if (state.lastDate !== null && date <= state.lastDate) return null;
  let { run, freezesUsed } = state;
  if (state.lastDate !== null) {
    const missed = dayNumber(date) - dayNumber(state.lastDate) - 1;
    if (missed > freezes - freezesUsed) {
      freezesUsed = freezes;
      run = 0;
    } else freezesUsed += missed;
  }
  run += 1;
  return { run, best: Math.max(state.best, run), freezesUsed, lastDate: date };
}

/**
 * The streak as it stands on `today`, from the stored state: the days missed since the last
 * check-in (not counting today, which is still open) use freezes, and end the run when there are
 * not enough. For a challenge that has ended, pass the day after its last day.
 */
export function streakOn(state: StreakState, today: LocalDate, freezes: number): Streak {
  if (state.lastDate === null) return { current: 0, best: state.best, freezesUsed: state.freezesUsed };
  const missed = Math.max(0, dayNumber(today) - dayNumber(state.lastDate) - 1);
  if (missed > freezes - state.freezesUsed) return { current: 0, best: state.best, freezesUsed: freezes };
  return { current: state.run, best: state.best, freezesUsed: state.freezesUsed + missed };
}

/** The streak on `today` from the check-in dates themselves: `streakOn(streakState(...))`. */
export const streakFrom = (dates: readonly LocalDate[], today: LocalDate, freezes: number): Streak =>
  streakOn(streakState(dates, freezes), today, freezes);
