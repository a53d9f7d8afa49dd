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
