import type { Redis } from 'ioredis';
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';

/** How often a process sends the requests it counted locally to Redis. */
export const SYNC_INTERVAL_MS = 100;

/** How long a process counts a key on top of what Redis last told it before asking again. */
export const TRUST_MS = 1000;

// Adds n to a key's count in the current window, starting the window when the key is new (it has
// no expiry yet). Returns the count and the milliseconds left in the window.
const INCREMENT = `
  local current = redis.call('INCRBY', KEYS[1], ARGV[1])
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return {current, ttl}`;

type Callback = Parameters<FastifyRateLimitStore['incr']>[1];

interface Window {
  /** The key's count in Redis when this process last heard it. */
  synced: number;
  /** Requests this process admitted since, not yet sent. */
  pending: number;
  /** When the window ends, and when Redis last answered for the key (this process's clock). */
  endsAt: number;
  heardAt: number;
}

interface RedisWithIncrement extends Redis {
  rateLimitIncrement(key: string, n: number, windowMs: number): Promise<[number, number]>;
}

/**
 * A store for @fastify/rate-limit that keeps fixed-window counts in Redis, shared by every API
 * process, without a Redis round trip on every request.
 *
 * A request increments its key in Redis and waits for the shared count, unless Redis answered for
 * that key less than TRUST_MS ago: then it is counted locally on top of that answer (what Redis
 * said plus what this process added since). Every SYNC_INTERVAL_MS the local additions of all keys
 * go to Redis in one pipeline, whose answers also bring back what other processes added. So within
 * one process a budget is exact, and across N processes a member can exceed it by at most what
 * the other processes admitted in the last TRUST_MS. A member's busy stretch then costs a Redis
 * round trip per second per process, not per request. For the small budgets that guard
 * credentials, the stores `app.rateLimit(...)` creates through `child` trust no answer (trustMs 0)
 * and ask Redis every time.
 *
 * Redis errors reach the plugin, which fails open (skipOnError); counts that could not be sent
 * are dropped, and the key asks Redis again on its next request.
 */
export class SharedWindowStore implements FastifyRateLimitStore {
  private readonly windows = new Map<string, Window>();
  private timer: NodeJS.Timeout | null = null;
  /** A sync's pipeline is on its way: its counts are still in `pending` until Redis answers. */
  private syncing = false;
  private readonly redis: RedisWithIncrement;

  /** What the plugin's `store` option takes: it constructs the store itself. */
  static on(redis: Redis, prefix: string): FastifyRateLimitStoreCtor {
    return class extends SharedWindowStore {
      constructor() {
        super(redis, prefix);
      }
    };
  }

  /** How long Redis's answer for a key is counted on; 0 asks Redis on every request. */
  private readonly trustMs: number;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    options: { trustMs?: number } = {},
  ) {
    this.trustMs = options.trustMs ?? TRUST_MS;
    this.redis = redis as RedisWithIncrement;
    if (!('rateLimitIncrement' in redis))
      redis.defineCommand('rateLimitIncrement', { numberOfKeys: 1, lua: INCREMENT });
  }

  incr(key: string, callback: Callback, windowMs: number): void {
    const now = Date.now();
    const window = this.windows.get(key);
    if (window && window.endsAt > now && now - window.heardAt < this.trustMs) {
      window.pending++;
      this.scheduleSync(windowMs);
      callback(null, { current: window.synced + window.pending, ttl: window.endsAt - now });
      return;
    }
    this.redis.rateLimitIncrement(this.prefix + key, 1, windowMs).then(
      ([current, ttl]) => {
        if (this.trustMs > 0) {
          this.heard(key, current, ttl, 0);
          this.scheduleSync(windowMs);
        }
        callback(null, { current, ttl });
      },
      (err: Error) => callback(err),
    );
  }

  /** Stores for `app.rateLimit(...)` limiters: the credential budgets, counted exactly. */
  child(): SharedWindowStore {
    return new SharedWindowStore(this.redis, this.prefix, { trustMs: 0 });
  }

  /** Sends what is pending now and forgets keys no longer trusted; run by a timer. */
  async sync(windowMs: number): Promise<void> {
    this.timer = null;
    // One sync at a time: the counts a sync sends stay in `pending` until Redis answers, so a
    // second sync started meanwhile (Redis slower than SYNC_INTERVAL_MS) would send them again.
    if (this.syncing) return;
    this.forget();
    const sending = [...this.windows].filter(([, w]) => w.pending > 0).map(([key, w]) => ({ key, n: w.pending }));
    if (!sending.length) return;
    this.syncing = true;
    try {
      const pipeline = this.redis.pipeline();
      for (const { key, n } of sending)
        (pipeline as unknown as RedisWithIncrement).rateLimitIncrement(this.prefix + key, n, windowMs);
      const replies = await pipeline.exec().catch(() => null);
      sending.forEach(({ key, n }, i) => {
        const [err, reply] = replies?.[i] ?? [new Error('no reply'), null];
        if (err) {
          this.windows.delete(key);
        } else {
          const [current, ttl] = reply as [number, number];
          this.heard(key, current, ttl, n);
        }
      });
    } finally {
      this.syncing = false;
    }
    // Requests counted while the pipeline was out are sent by the next sync.
    if ([...this.windows.values()].some((w) => w.pending > 0)) this.scheduleSync(windowMs);
  }

  /** Redis said `current` after this process's `sent` requests were added: rebase the window. */
  private heard(key: string, current: number, ttl: number, sent: number): void {
    const window = this.windows.get(key);
    const pending = window ? Math.max(0, window.pending - sent) : 0;
    const now = Date.now();
    this.windows.set(key, { synced: current, pending, endsAt: now + ttl, heardAt: now });
  }

  private scheduleSync(windowMs: number): void {
    if (this.timer || this.syncing) return;
    // sync() handles Redis errors itself; the catch only keeps anything unforeseen from becoming an
    // unhandled rejection, which would end the process.
    this.timer = setTimeout(() => this.sync(windowMs).catch(() => {}), SYNC_INTERVAL_MS);
    this.timer.unref();
  }

  /** Drops ended windows (their unsent counts belong to a window that is over) and idle keys. */
  private forget(): void {
    const now = Date.now();
    for (const [key, w] of this.windows)
      if (w.endsAt <= now || (w.pending === 0 && now - w.heardAt >= this.trustMs)) this.windows.delete(key);
  }
}

/**
 * Fixed-window counts in this process's memory, for an API without Redis (no REDIS_URL): each
 * process enforces the budgets on its own, so N processes admit up to N times a budget.
 *
 * Not @fastify/rate-limit's own in-process store: it answers every request with its live counter
 * object, and the plugin reads the count only after an await, so requests counted in one
 * event-loop turn all read the last count (12 requests at once against a budget of 5 were all
 * refused). Here each request gets the count it made.
 */
export class ProcessWindowStore implements FastifyRateLimitStore {
  private readonly windows = new Map<string, { count: number; endsAt: number }>();
  private sweptAt = Date.now();

  incr(key: string, callback: Callback, windowMs: number): void {
    const now = Date.now();
    this.forgetEnded(now, windowMs);
    let window = this.windows.get(key);
    if (!window || window.endsAt <= now) {
      window = { count: 0, endsAt: now + windowMs };
      this.windows.set(key, window);
    }
    window.count++;
    callback(null, { current: window.count, ttl: window.endsAt - now });
  }

  /**
   * The store of a `createRateLimit` limiter: this one. Every budget's keys carry its own prefix,
   * and a budget spent through two limiters (the per-IP credential budget of login and of a
   * password change) must count in one place, as it does in Redis.
   */
  child(): ProcessWindowStore {
    return this;
  }

  /** Drops ended windows, at most once per window length, so memory follows the active keys. */
  private forgetEnded(now: number, windowMs: number): void {
    if (now - this.sweptAt < windowMs) return;
    this.sweptAt = now;
    for (const [key, w] of this.windows) if (w.endsAt <= now) this.windows.delete(key);
  }
}
