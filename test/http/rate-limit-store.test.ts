import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { ProcessWindowStore, SharedWindowStore } from '../../src/http/rate-limit-store.js';
import { controlClock } from '../clock.js';
import { REDIS_URL, flushPrefix } from '../helper.js';

// The rate-limit store against a real Redis: several stores on one prefix stand for several API
// processes sharing a budget.

const WINDOW = 60_000;

function setup(t: Test) {
  const prefix = `ca_test_${crypto.randomUUID()}:rate:`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  t.teardown(async () => {
    await flushPrefix(prefix.slice(0, -':rate:'.length));
    redis.disconnect();
  });
  const store = (options: { trustMs?: number } = {}) => new SharedWindowStore(redis, prefix, options);
  return { prefix, redis, store };
}

/**
 * Waits until a sync timer has brought a key's count in Redis to `value` (or 5 s have passed), then
 * one more turn of the event loop: the store takes in Redis's answer to that sync in callbacks
 * that may still be queued when Redis already shows the count.
 */
async function redisReaches(redis: Redis, key: string, value: string): Promise<string | null> {
  const deadline = performance.now() + 5_000;
  for (;;) {
    const current = await redis.get(key);
    if (current === value || performance.now() > deadline) {
      await new Promise((resolve) => setImmediate(resolve));
      return current;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const incr = (store: SharedWindowStore, key: string, windowMs = WINDOW) =>
  new Promise<{ current: number; ttl: number }>((resolve, reject) =>
    store.incr(key, (err, res) => (err ? reject(err) : resolve(res!)), windowMs),
  );

t.test('within one process the count is exact, in sequence and in a burst', async (t) => {
  const { store } = setup(t);
  const s = store();
  const burst = await Promise.all(Array.from({ length: 12 }, () => incr(s, 'u:ann')));
  t.same(
    burst.map((r) => r.current).sort((a, b) => a - b),
    Array.from({ length: 12 }, (_, i) => i + 1),
    'a burst before the first answer: every request counted once',
  );
  const next = [];
  for (let i = 0; i < 5; i++) next.push((await incr(s, 'u:ann')).current);
  t.same(next, [13, 14, 15, 16, 17], 'then counted locally, one by one');
  t.equal((await incr(s, 'u:bob')).current, 1, 'each key has its own count');
  const { ttl } = await incr(s, 'u:ann');
  t.ok(ttl > 0 && ttl <= WINDOW, `the time left in the window (${ttl} ms)`);
});

t.test('processes share the count through Redis; each trusts its last answer for a moment only', async (t) => {
  const { prefix, redis, store } = setup(t);
  const clock = controlClock(t);
  const [a, b] = [store({ trustMs: 1500 }), store({ trustMs: 1500 })];
  t.equal((await incr(b, 'u:ann')).current, 1, 'b starts the window');
  for (let i = 0; i < 5; i++) await incr(a, 'u:ann');
  await a.sync(WINDOW);
  t.equal(await redis.get(`${prefix}u:ann`), '6', 'a asked Redis once and sent the rest of its counts in one sync');
  t.equal((await incr(b, 'u:ann')).current, 2, 'b counts on its last answer while it trusts it: the bounded lag');
  t.equal(await redisReaches(redis, `${prefix}u:ann`, '7'), '7', "b's sync timer sent its own request");
  clock.advance(1499);
  t.equal((await incr(b, 'u:ann')).current, 8, 'still trusted: counted locally on the answer its sync brought');
  t.equal(await redisReaches(redis, `${prefix}u:ann`, '8'), '8', 'and its timer sent that one too');
  clock.advance(1500); // trust runs from Redis's last answer, which that sync brought
  await redis.incrby(`${prefix}u:ann`, 10);
  t.equal((await incr(b, 'u:ann')).current, 19, "no longer trusted: b asks Redis and counts other processes' requests");
  await Promise.all([a.sync(WINDOW), b.sync(WINDOW)]);
  t.equal(await redis.get(`${prefix}u:ann`), '19', 'every local count sent: none lost, none twice');
});

t.test(
  'on an auto-pipelined connection (as the API runs it), one turn of requests is one round trip and stays exact',
  async (t) => {
    const { prefix } = setup(t);
    const own = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, enableAutoPipelining: true });
    t.teardown(() => own.disconnect());
    await own.ping();
    const s = new SharedWindowStore(own, prefix);
    const members = Array.from({ length: 40 }, (_, i) => `u:m${i}`);
    // Three requests per member in one turn. They are also the connection's first use of the
    // increment script, which ioredis must load into Redis before the pipeline runs.
    const answers = members.flatMap((key) => [incr(s, key), incr(s, key), incr(s, key)]);
    t.equal(own.autoPipelineQueueSize, members.length * 3, 'every increment waits for one pipeline, none went alone');
    const counts = await Promise.all(answers);
    t.ok(
      members.every(
        (_, m) =>
          counts
            .slice(m * 3, m * 3 + 3)
            .map((r) => r.current)
            .sort()
            .join() === '1,2,3',
      ),
      'each member counted 1, 2, 3',
    );
    t.same(
      await own.mget(members.map((key) => prefix + key)),
      members.map(() => '3'),
      'and Redis holds each count once',
    );
  },
);

t.test('a sync started while another is still waiting for Redis sends nothing twice', async (t) => {
  const { prefix, redis, store } = setup(t);
  const s = store();
  await incr(s, 'u:ann'); // Redis answers: counted locally from here
  for (let i = 0; i < 5; i++) await incr(s, 'u:ann');
  // Two syncs, the second started before the first's pipeline came back, as happens when Redis
  // takes longer than the sync interval to answer.
  const first = s.sync(WINDOW);
  const second = s.sync(WINDOW);
  await Promise.all([first, second]);
  t.equal(await redis.get(`${prefix}u:ann`), '6', 'Redis holds the six requests once each');
  // Requests counted while a pipeline was out are not lost: they go with the next sync.
  const during = s.sync(WINDOW);
  await incr(s, 'u:ann');
  await during;
  t.equal(await redisReaches(redis, `${prefix}u:ann`, '7'), '7', 'the request counted meanwhile is sent afterwards');
});

t.test('exact stores (credential budgets) ask Redis on every request', async (t) => {
  const { store } = setup(t);
  const [a, b] = [store().child(), store().child()];
  const seen = [];
  for (let i = 0; i < 3; i++)
    seen.push((await incr(a, 'auth:1.2.3.4')).current, (await incr(b, 'auth:1.2.3.4')).current);
  t.same(seen, [1, 2, 3, 4, 5, 6], 'no request is counted locally');
});

t.test('a window ends: the count starts again', async (t) => {
  const { prefix, redis, store } = setup(t);
  const clock = controlClock(t);
  // Trusted far longer than the window, so only the window's end can make the store ask again.
  const s = store({ trustMs: 10 * WINDOW });
  for (let i = 0; i < 3; i++) await incr(s, 'u:ann');
  t.equal(await redisReaches(redis, `${prefix}u:ann`, '3'), '3');
  clock.advance(WINDOW);
  await redis.del(`${prefix}u:ann`); // Redis ends the window too (the key's expiry)
  t.equal((await incr(s, 'u:ann')).current, 1);
});

t.test('Redis errors reach the limiter (which fails open); counts that could not be sent are dropped', async (t) => {
  const { prefix } = setup(t);
  const own = new Redis(REDIS_URL, { maxRetriesPerRequest: 0 });
  const s = new SharedWindowStore(own, prefix);
  t.teardown(() => own.disconnect());
  await incr(s, 'u:ann');
  await incr(s, 'u:ann');
  own.disconnect();
  await s.sync(WINDOW);
  await t.rejects(incr(s, 'u:ann'), 'the sync failed, so the key asks Redis again, and that error reaches the limiter');
});

/** What a store answers for one request, synchronously or not. */
function count(store: ProcessWindowStore, key: string): Promise<{ current: number; ttl: number }> {
  return new Promise((done, fail) => {
    store.incr(key, (err, res) => (err || !res ? fail(err) : done({ ...res })), WINDOW);
  });
}

t.test('without Redis: fixed windows per key in the process, each request told its own count', async (t) => {
  const clock = controlClock(t);
  const store = new ProcessWindowStore();
  // Answers kept, not read at once: a later request must not change what an earlier one was told.
  const answers: { current: number; ttl: number }[] = [];
  for (let i = 0; i < 3; i++) store.incr('u:a', (_err, res) => answers.push(res!), WINDOW);
  await new Promise((resolve) => setImmediate(resolve));
  t.same(
    answers.map((a) => a.current),
    [1, 2, 3],
  );
  t.equal(answers[0]!.ttl, WINDOW);
  t.same(await count(store, 'u:b'), { current: 1, ttl: WINDOW }, 'another key counts on its own');

  clock.advance(WINDOW - 1);
  t.same(await count(store, 'u:a'), { current: 4, ttl: 1 }, 'the same window until its last millisecond');
  clock.advance(1);
  t.same(await count(store, 'u:a'), { current: 1, ttl: WINDOW }, 'then a new one');

  // A limiter's store counts where the others do, as in Redis: budgets are told apart by their keys.
  const child = store.child();
  t.same(await count(child, 'u:a'), { current: 2, ttl: WINDOW }, "a child store counts a key with its parent's count");
  t.same(await count(child, 'auth:a'), { current: 1, ttl: WINDOW }, 'another budget is another key');
  t.same(await count(store, 'u:a'), { current: 3, ttl: WINDOW });
});

t.test('without Redis: ended windows are forgotten', async (t) => {
  const clock = controlClock(t);
  const store = new ProcessWindowStore();
  for (let i = 0; i < 100; i++) await count(store, `ip:${i}`);
  const size = () => (store as unknown as { windows: Map<string, unknown> }).windows.size;
  t.equal(size(), 100);
  clock.advance(WINDOW);
  await count(store, 'ip:new');
  t.equal(size(), 1, 'only the key counted in the new window is kept');
});
