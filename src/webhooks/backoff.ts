// When a failed webhook message is tried again: exponential backoff with jitter. The n-th retry
// waits base * 2^(n-1), capped, and then a random point in its upper half, so endpoints that fail
// together (an outage) are not all retried in the same instant, yet no retry comes much earlier
// than the schedule promises.

export const MAX_RETRY_DELAY_MS = 6 * 3600 * 1000;

/**
 * The delay before attempt `nextAttempt` (2 or more), given the base delay. `random` is a number
 * in [0, 1), Math.random by default (a parameter so the bounds are testable).
 */
export function retryDelayMs(nextAttempt: number, baseMs: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, nextAttempt - 2);
  const ceiling = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** Math.min(exponent, 40));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
