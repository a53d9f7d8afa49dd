import { createHmac } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig } from '../../../src/config.js';
import { openQueueConnection } from '../../../src/jobs/queue-backend.js';
import { Queues } from '../../../src/jobs/queues.js';
import { freePort, startRole, stop, type ServiceProcess } from './processes.js';

// The service under test: one API process and one worker process on the bench database and
// queue prefix, configured through the environment as an operator would: queues in Redis (the
// default setup), or with no Redis at all (queues in Postgres, rate limits counted per process).

const JWT = {
  secret: 'bench-only-secret-0123456789abcdef-0123456789',
  issuer: 'circle-actions',
  audience: 'circle-actions-api',
};

export type QueueBackend = 'redis' | 'postgres';

export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379';

export interface Service {
  url: string;
  api: ServiceProcess;
  worker: ServiceProcess;
  /** Where its queues live; on postgres the service has no REDIS_URL at all. */
  queueBackend: QueueBackend;
  /** The machine's Redis, for CPU accounting (idle when the service does not use it). */
  redisUrl: string;
  env: Record<string, string>;
}

export function serviceEnv(o: {
  databaseUrl: string;
  queuePrefix: string;
  port: number;
  maxLiveClaims: number;
  queueBackend?: QueueBackend;
}): Record<string, string> {
  return {
    DATABASE_URL: o.databaseUrl,
    ...(o.queueBackend === 'postgres' ? { QUEUE_BACKEND: 'postgres' } : { REDIS_URL: BENCH_REDIS_URL }),
    QUEUE_PREFIX: o.queuePrefix,
    PORT: String(o.port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    JWT_SECRET: JWT.secret,
    JWT_ISSUER: JWT.issuer,
    JWT_AUDIENCE: JWT.audience,
    ACCESS_TOKEN_TTL_SECONDS: '86400',
    RATE_LIMIT_MAX: '100000000',
    AUTH_RATE_LIMIT_MAX: '100000000',
    PASSWORD_HASH_COST: '10',
    MAX_LIVE_CLAIMS_PER_MEMBER: String(o.maxLiveClaims),
    // The service's default pool size unless overridden, to compare pool sizes.
    ...(process.env.BENCH_DATABASE_POOL_SIZE && { DATABASE_POOL_SIZE: process.env.BENCH_DATABASE_POOL_SIZE }),
  };
}

async function waitFor(
  what: string,
  proc: ServiceProcess,
  check: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`${what} exited (code ${proc.child.exitCode}):\n${proc.tail()}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready after ${timeoutMs / 1000} s:\n${proc.tail()}`);
}

export async function startService(o: {
  databaseUrl: string;
  queuePrefix: string;
  maxLiveClaims: number;
  cpuProfileDir: string | null;
  queueBackend?: QueueBackend;
}): Promise<Service> {
  const port = await freePort();
  const env = serviceEnv({ ...o, port });
  // The API first: it migrates the (already migrated) database, and creates the queue tables on
  // the postgres backend; then the worker.
  const api = startRole('api', env, o.cpuProfileDir);
  const url = `http://127.0.0.1:${port}`;
  await waitFor('API', api, async () => (await fetch(`${url}/readyz`)).ok);
  // The worker serves its health and metrics on a port of its own (0: any free one).
  const worker = startRole('worker', { ...env, PORT: '0' }, o.cpuProfileDir);
  const config = loadConfig(env);
  const connection = openQueueConnection(config, 'worker');
  const queues = new Queues(connection, config.queuePrefix);
  try {
    await waitFor('worker', worker, async () => (await queues.get('settlements').getWorkers()).length > 0);
  } finally {
    await queues.close();
    await connection.close();
  }
  return { url, api, worker, queueBackend: config.queueBackend, redisUrl: BENCH_REDIS_URL, env };
}

export async function stopService(s: Service): Promise<void> {
  await Promise.all([stop(s.api.child), stop(s.worker.child)]);
}

/** Deletes every Redis key under the bench's queue prefix (queues, jobs, rate-limit counters). */
export async function clearRedis(redisUrl: string, prefix: string): Promise<number> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on('error', () => {});
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');

/**
 * An access token exactly as the API issues it (HS256 with the service's secret, iss/aud/exp),
 * for members seeded in SQL. The owner of each scenario still registers through the API.
 */
export function mintAccessToken(userId: string, ttlSeconds = 86400): string {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(
    JSON.stringify({ sub: userId, iat: now, exp: now + ttlSeconds, iss: JWT.issuer, aud: JWT.audience }),
  );
  const signature = createHmac('sha256', JWT.secret).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

/** A JSON call to the API that must succeed. */
export async function api<T = unknown>(
  url: string,
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${url}${path}`, {
    method,
    headers,
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} -> ${res.status}: ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : undefined) as T;
}
