import type { Test } from 'tap';

// Time moved by the test instead of waited for. The code under test (the rate-limit store, the JWT
// verifier's cache and expiry check) reads Date.now(), so the test stops that clock and moves it
// forward itself; timers, Redis and Postgres keep their own time. Polls that need a deadline while
// the clock is stopped measure it with performance.now().

/** Stops this process's Date.now() at the current time until the test ends; `advance` moves it. */
export function controlClock(t: Test): { advance(ms: number): void } {
  const realNow = Date.now;
  let now = realNow();
  Date.now = () => now;
  t.teardown(() => {
    Date.now = realNow;
  });
  return {
    advance(ms: number) {
      now += ms;
    },
  };
}

/**
 * Makes this process's `new Date()` (no arguments) read `offsetMs` off, as on a host whose clock
 * is skewed from the database's, until the test ends. Date.now() keeps real time (tokens stay
 * valid), and dates built from a value (the driver's) are untouched.
 */
export function skewHostClock(t: Test, offsetMs: number): void {
  const RealDate = globalThis.Date;
  class SkewedDate extends RealDate {
    constructor(...args: ConstructorParameters<typeof RealDate> | []) {
      if (args.length === 0) super(RealDate.now() + offsetMs);
      else super(...(args as ConstructorParameters<typeof RealDate>));
    }
  }
  globalThis.Date = SkewedDate as DateConstructor;
  t.teardown(() => {
    globalThis.Date = RealDate;
  });
}
