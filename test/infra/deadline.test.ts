import t from 'tap';
import { DeadlineExceeded, withDeadline } from '../../src/infra/deadline.js';

// withDeadline bounds every wait on an outside store (readiness probes, metric sources, request-path
// enqueues, the queue store's first ping): it settles as the promise does within the deadline, as
// the timeout says after it, and in every case clears its timer, so a quick answer leaves nothing
// behind that keeps the process alive or fires later.

/** Timers alive in this process now (Node's own count, which tap's timers are part of too). */
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/** A promise and the functions that settle it, for settling it exactly when the test says. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

t.test('a promise settling in time: its value or its error, and the timer is cleared', async (t) => {
  const before = timers();
  const answer = deferred<string>();
  const racing = withDeadline(answer.promise, 60_000, 'probe');
  t.equal(timers(), before + 1, 'one timer while the race is on');
  answer.resolve('pong');
  t.equal(await racing, 'pong');
  t.equal(timers(), before, 'cleared once it resolved');

  const failure = new Error('connection refused');
  const failing = deferred<string>();
  const failed = withDeadline(failing.promise, 60_000, () => 'fallback');
  t.equal(timers(), before + 1);
  failing.reject(failure);
  await t.rejects(failed, failure, 'the very error, not the fallback');
  t.equal(timers(), before, 'cleared once it rejected');

  t.equal(await withDeadline(Promise.resolve(7), 60_000, 'already settled'), 7);
  t.equal(timers(), before, 'cleared for an already settled promise too');
});

t.test('a promise that does not settle in time: the label rejects, a fallback answers', async (t) => {
  const before = timers();
  const hanging = new Promise<never>(() => {});
  const started = Date.now();
  const err = await withDeadline(hanging, 50, 'enqueueing job-1').catch((e: unknown) => e);
  t.ok(Date.now() - started >= 45, `waited out the deadline (${Date.now() - started} ms)`);
  t.ok(err instanceof DeadlineExceeded);
  t.equal((err as DeadlineExceeded).message, 'enqueueing job-1 timed out', 'the message callers log');
  t.equal((err as DeadlineExceeded).label, 'enqueueing job-1');
  t.equal((err as DeadlineExceeded).ms, 50);
  t.equal(timers(), before, 'no timer left');

  t.equal(await withDeadline(hanging, 10, () => false), false, 'the fallback value');
  t.equal(await withDeadline(hanging, 10, async () => 'later'), 'later', 'or the fallback promise');
  const thrown = new Error('no fallback');
  await t.rejects(
    withDeadline(hanging, 10, () => {
      throw thrown;
    }),
    thrown,
    'a fallback that throws rejects with its error',
  );
  t.equal(timers(), before, 'no timer left');
});

t.test('a promise failing after the deadline passed is not an unhandled rejection', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => {
    process.off('unhandledRejection', onUnhandled);
  });
  const late = deferred<string>();
  t.equal(await withDeadline(late.promise, 10, () => 'gave up'), 'gave up');
  late.reject(new Error('too late'));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.same(unhandled, [], 'the late failure is ignored');
});
