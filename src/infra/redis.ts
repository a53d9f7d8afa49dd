import { Redis, type RedisOptions } from 'ioredis';

/**
 * Connection for BullMQ workers: commands wait through Redis outages instead of failing, as
 * BullMQ's production guide requires (maxRetriesPerRequest: null), retrying with a capped backoff.
 */
export function createWorkerRedis(url: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 5_000),
  });
}

/**
 * Connection for code on a request path (queue producers, rate limits, readiness): commands fail
 * at once while Redis is unreachable so a request never hangs on it.
 */
export function createRequestRedis(url: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 200, 5_000),
    ...extra,
  });
}

/** BullMQ loses jobs if Redis may evict keys; say so loudly rather than fail later in silence. */
export async function checkEvictionPolicy(redis: Redis): Promise<string | null> {
  const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
  const policy = reply[1] ?? 'unknown';
  return policy === 'noeviction' ? null : policy;
}

/**
 * Waits (briefly) for a fail-fast connection to come up, so the first requests after start don't
 * fail just because the socket is still opening. If Redis is down we start anyway: the API serves
 * what it can without it and the client reconnects in the background.
 */
export async function waitUntilReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true;
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    redis.on('ready', onReady);
  });
}
