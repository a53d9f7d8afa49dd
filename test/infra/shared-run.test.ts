import t from 'tap';
import { sharedRun } from '../../src/infra/shared-run.js';

// One run of the work for all who ask while it runs; a fresh run after it settles, failed or not.

t.test('callers during a run share it; the next call runs again', async (t) => {
  let runs = 0;
  let finish!: (value: number) => void;
  const read = sharedRun(() => {
    runs++;
    return new Promise<number>((resolve) => {
      finish = resolve;
    });
  });
  const burst = Array.from({ length: 20 }, () => read());
  t.equal(runs, 1, 'twenty callers, one run');
  finish(7);
  t.same(await Promise.all(burst), Array(20).fill(7), 'each gets its answer');
  const next = read();
  t.equal(runs, 2, 'a call after it settled runs afresh');
  finish(8);
  t.equal(await next, 8);
});

t.test('a failed run fails its callers, and the next call tries again', async (t) => {
  let runs = 0;
  const read = sharedRun(async () => {
    runs++;
    if (runs === 1) throw new Error('unreachable');
    return 'ok';
  });
  const [a, b] = await Promise.allSettled([read(), read()]);
  t.match([a.status, b.status], ['rejected', 'rejected']);
  t.equal(runs, 1);
  t.equal(await read(), 'ok');
  t.equal(runs, 2);
});
