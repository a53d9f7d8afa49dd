import t from 'tap';
import fc from 'fast-check';
import { MAX_RETRY_DELAY_MS, retryDelayMs } from '../../src/webhooks/backoff.js';

// The retry schedule: doubling from the base, jittered within the upper half, capped.

t.test('each retry waits between half and all of base * 2^(n-2), capped', async (t) => {
  t.equal(
    retryDelayMs(2, 1000, () => 0),
    500,
  );
  t.equal(
    retryDelayMs(2, 1000, () => 0.999999),
    1000,
  );
  t.equal(
    retryDelayMs(3, 1000, () => 0),
    1000,
  );
  t.equal(
    retryDelayMs(5, 1000, () => 0),
    4000,
  );
  t.equal(
    retryDelayMs(60, 1000, () => 0),
    MAX_RETRY_DELAY_MS / 2,
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 100 }),
      fc.integer({ min: 1, max: 3_600_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (n, base, r) => {
        const ceiling = Math.min(MAX_RETRY_DELAY_MS, base * 2 ** (n - 2));
        const d = retryDelayMs(n, base, () => r);
        return d >= Math.floor(ceiling / 2) && d <= Math.ceil(ceiling) && Number.isInteger(d);
      },
    ),
  );
});

t.test('the schedule never shrinks from one retry to the next (upper bounds)', async (t) => {
  for (let n = 2; n < 30; n++)
    t.ok(retryDelayMs(n + 1, 30_000, () => 0.999999) >= retryDelayMs(n, 30_000, () => 0.999999), `retry ${n}`);
});
