import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { buildApp } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';
import { createDb, type Db } from '../src/infra/postgres.js';
import { QUEUE_SCHEMA } from '../src/jobs/queue-backend.js';
import { TEMPLATE_DB, TEST_CONNECT_TIMEOUT_MS, databaseUrl, withAdminClient } from './setup/test-database.js';

// The one way tests build the service: a database and a queue prefix of their own (so files run
// in parallel without seeing each other), real Postgres and Redis, torn down afterwards.

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The queue backends every queue-dependent test runs on, in the same run. */
export const QUEUE_BACKENDS = ['redis', 'postgres'] as const;
export type QueueBackendName = (typeof QUEUE_BACKENDS)[number];

/**
 * The settings that put a test's queues on `backend`, for createTestEnv/buildTestApp. Postgres runs
 * without REDIS_URL at all (an empty value counts as unset), as on a machine with no Redis: queues
 * in the test's database, rate limits counted in the process.
 */
export function queueBackendEnv(backend: QueueBackendName): Record<string, string> {
  return backend === 'redis' ? { QUEUE_BACKEND: 'redis' } : { QUEUE_BACKEND: 'postgres', REDIS_URL: '' };
}

/**
 * Runs `fn` once per queue backend, each a subtest named after its backend, side by side: each has
 * a database and a queue prefix of its own, and most of a queue test is waiting (for a lease, a
 * sweep, a worker), so the second backend costs the file little wall time. A test that stops this
 * process's clock (test/clock.ts) passes `sequential`: Date.now is one for the whole process, so two
 * backends moving it at once would move each other's time.
 */
export function onEachQueueBackend(
  t: Test,
  name: string,
  fn: (t: Test, backend: QueueBackendName) => Promise<void>,
  options: { sequential?: boolean } = {},
): void {
  t.test(name, { jobs: options.sequential ? 1 : QUEUE_BACKENDS.length }, async (t) => {
    for (const backend of QUEUE_BACKENDS) t.test(backend, (t) => fn(t, backend));
  });
}

export interface TestEnv {
  config: Config;
  /** A direct handle on the test's database, for asserting rows. */
  db: Db;
}

/** Clones the migrated template into a fresh database and returns config pointing at it. */
export async function createTestEnv(t: Test, env: Record<string, string> = {}): Promise<TestEnv> {
  const suffix = randomBytes(6).toString('hex');
  const name = `ca_test_${suffix}`;
  await withAdminClient((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DB}`));
  const config = loadConfig({
    DATABASE_URL: databaseUrl(name),
    DATABASE_POOL_SIZE: '10',
    DATABASE_CONNECT_TIMEOUT_MS: String(TEST_CONNECT_TIMEOUT_MS),
    REDIS_URL,
    QUEUE_PREFIX: `catest${suffix}`,
    LOG_LEVEL: 'silent',
    PASSWORD_HASH_COST: '10',
    RATE_LIMIT_MAX: '100000',
    AUTH_RATE_LIMIT_MAX: '100000',
    SWEEP_INTERVAL_SECONDS: '1',
    JWT_SECRET: 'test-secret-that-is-long-enough-for-hs256-0123456789',
    ...env,
  });
  const db = createDb(config.databaseUrl, 5, TEST_CONNECT_TIMEOUT_MS);
  t.teardown(async () => {
    await db.destroy();
    await flushPrefix(config.queuePrefix);
    await withAdminClient((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  });
  return { config, db };
}

/** Deletes every Redis key under a queue prefix (rate-limit counters and BullMQ data). */
export async function flushPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } catch {
    // Redis may be down on purpose in a fault test; nothing to clean then.
  } finally {
    redis.disconnect();
  }
}

/**
 * Loses every job, as a queue store restarted empty would: the test's Redis keys, or the rows of
 * BullMQ's tables in the test's database (its schema stays migrated).
 */
export async function flushQueueStore(config: Config): Promise<void> {
  if (config.queueBackend === 'redis') return flushPrefix(config.queuePrefix);
  const db = createDb(config.databaseUrl, 1, TEST_CONNECT_TIMEOUT_MS);
  try {
    await sql`
      DO $$ DECLARE tables text;
      BEGIN
        SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') INTO tables
          FROM pg_tables WHERE schemaname = ${sql.lit(QUEUE_SCHEMA)} AND tablename <> 'migration';
        EXECUTE 'TRUNCATE ' || tables;
      END $$`.execute(db);
  } finally {
    await db.destroy();
  }
}

export async function buildTestApp(
  t: Test,
  env: Record<string, string> = {},
): Promise<TestEnv & { app: FastifyInstance }> {
  const testEnv = await createTestEnv(t, env);
  const app = await buildApp({ config: testEnv.config, logger: false });
  t.teardown(() => app.close());
  await app.ready();
  await untilQueueStoreUp(app, env);
  return { ...testEnv, app };
}

/**
 * The app starts even when its fail-fast queue connection is not up yet (it waits 2 s, then serves
 * what it can and leaves the rest to the sweeps), and its request-path enqueues fail at once until
 * it is. On a loaded machine that lasts seconds, so a test whose requests must enqueue would fail
 * for no fault of the code: the test's own store is waited for here, the event observed. A test
 * that names another Redis (one that is down on purpose) is not held up.
 */
async function untilQueueStoreUp(app: FastifyInstance, env: Record<string, string>): Promise<void> {
  if (env.REDIS_URL) return;
  if (!(await app.queueConnection.waitUntilReady(60_000))) throw new Error('the test queue store is not reachable');
}

/**
 * Like buildTestApp, but lets the test add routes or hooks before the app is made ready
 * (Fastify refuses new routes afterwards).
 */
export async function buildTestAppWith(
  t: Test,
  env: Record<string, string>,
  prepare: (app: FastifyInstance) => void | Promise<void>,
): Promise<TestEnv & { app: FastifyInstance }> {
  const testEnv = await createTestEnv(t, env);
  const app = await buildApp({ config: testEnv.config, logger: false });
  t.teardown(() => app.close());
  await prepare(app);
  await app.ready();
  await untilQueueStoreUp(app, env);
  return { ...testEnv, app };
}

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | number | undefined>;
  type: string;
}

/** app.inject with JSON in and out, and an optional bearer token. */
export async function call<T = any>(
  app: FastifyInstance,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT',
  url: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const res = await app.inject({
    method,
    url,
    headers,
    ...(options.body === undefined
      ? {}
      : typeof options.body === 'string'
        ? { payload: options.body }
        : { payload: options.body as object }),
  });
  let body: unknown = res.body;
  try {
    body = res.body ? JSON.parse(res.body) : null;
  } catch {
    // not JSON: keep the text
  }
  return {
    status: res.statusCode,
    body: body as T,
    headers: res.headers,
    type: String(res.headers['content-type'] ?? ''),
  };
}

export interface TestUser {
  id: string;
  handle: string;
  token: string;
  refreshToken: string;
}

let userCounter = 0;
export async function registerUser(app: FastifyInstance, prefix = 'user'): Promise<TestUser> {
  const handle = `${prefix}_${process.pid}_${userCounter++}_${randomBytes(2).toString('hex')}`.slice(0, 30);
  const res = await call(app, 'POST', '/v1/auth/register', { body: { handle, password: 'correct horse battery' } });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.user.id, handle, token: res.body.accessToken, refreshToken: res.body.refreshToken };
}

/** An owner with a circle, and helpers to add members in a given role. */
export async function createCircle(app: FastifyInstance, owner: TestUser, joinPolicy: 'open' | 'invite' = 'open') {
  const res = await call(app, 'POST', '/v1/circles', { token: owner.token, body: { name: 'Test circle', joinPolicy } });
  if (res.status !== 201) throw new Error(`create circle failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; ownerId: string };
}

export async function addMember(
  app: FastifyInstance,
  owner: TestUser,
  circleId: string,
  role: 'member' | 'admin' = 'member',
  prefix = 'member',
): Promise<TestUser> {
  const user = await registerUser(app, prefix);
  const invite = await call(app, 'POST', `/v1/circles/${circleId}/invites`, { token: owner.token, body: {} });
  const joined = await call(app, 'POST', `/v1/circles/${circleId}/members`, {
    token: user.token,
    body: { inviteCode: invite.body.code },
  });
  if (joined.status !== 201) throw new Error(`join failed: ${joined.status} ${JSON.stringify(joined.body)}`);
  if (role === 'admin') {
    const changed = await call(app, 'PATCH', `/v1/circles/${circleId}/members/${user.id}`, {
      token: owner.token,
      body: { role: 'admin' },
    });
    if (changed.status !== 200) throw new Error(`role change failed: ${changed.status}`);
  }
  return user;
}

export function isProblem(res: Reply, status: number, code?: string): boolean {
  return (
    res.status === status &&
    res.type.startsWith('application/problem+json') &&
    res.body?.status === status &&
    (code === undefined || res.body?.code === code)
  );
}
