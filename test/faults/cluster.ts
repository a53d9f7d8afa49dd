import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Test } from 'tap';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { checkInvariants } from '../../src/audit/invariants.js';
import type { Db } from '../../src/infra/postgres.js';
import { buildTestApp, createTestEnv, type TestEnv } from '../helper.js';
import { freePort, spawnServer, type ServerProcess } from '../service-process.js';

export { freePort };

// Real processes for the fault scenarios: API and worker processes of src/server.ts, and private
// redis-server instances this test may kill and restart (the machine's shared Redis and Postgres
// are never touched). Everything talks to 127.0.0.1 only, and every wait is bounded.

/** Polls `probe` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T> | T,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

// ---------------------------------------------------------------------------------------------
// A private Redis

export interface PrivateRedis {
  port: number;
  url: string;
  /** SIGKILL: down at once, nothing flushed. */
  kill(): Promise<void>;
  /** Starts it again on the same port (with its data only if started with persistence). */
  start(): Promise<void>;
  readonly up: boolean;
}

/**
 * A redis-server of this test's own. `persistent` keeps an fsync'd append-only file, so a kill
 * and restart loses nothing ("down for a while"); without it a restart comes back empty
 * ("restarted without persistence").
 */
export async function privateRedis(t: Test, options: { persistent?: boolean } = {}): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ca-redis-'));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--maxmemory-policy',
    'noeviction',
    ...(options.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
  ];
  const handle: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get up() {
      return !!child && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      child = spawn('redis-server', args, { stdio: 'ignore' });
      const current = child;
      exited = new Promise((done) => current.once('exit', () => done()));
      await until(
        `redis-server on ${port}`,
        async () => {
          const probe = new Redis(port, '127.0.0.1', {
            lazyConnect: true,
            maxRetriesPerRequest: 0,
            retryStrategy: () => null,
          });
          probe.on('error', () => {});
          try {
            await probe.connect();
            return (await probe.ping()) === 'PONG';
          } finally {
            probe.disconnect();
          }
        },
        10_000,
        50,
      );
    },
    async kill() {
      if (handle.up) {
        child!.kill('SIGKILL');
        await exited;
      }
    },
  };
  await handle.start();
  t.teardown(async () => {
    await handle.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  return handle;
}

// ---------------------------------------------------------------------------------------------
// Service processes

/** A service process in a role (workers log at info, APIs at warn). */
export interface ServiceProcess extends ServerProcess {
  role: 'api' | 'worker';
  name: string;
  port: number;
  url: string;
}

/** The environment every process of a scenario shares: one database, one queue prefix. */
export function serviceEnv(env: TestEnv, redisUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: env.config.databaseUrl,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: env.config.queuePrefix,
    JWT_SECRET: env.config.jwt.secret,
    HOST: '127.0.0.1',
    PASSWORD_HASH_COST: '10',
    RATE_LIMIT_MAX: '1000000',
    AUTH_RATE_LIMIT_MAX: '1000000',
    DATABASE_POOL_SIZE: '10',
    JOB_LOCK_SECONDS: '2',
    SWEEP_INTERVAL_SECONDS: '1',
    ...extra,
  };
}

let counter = 0;

/** Starts `node --import tsx src/server.ts` in a role and waits until it is ready. */
export async function startService(
  t: Test,
  role: 'api' | 'worker',
  env: Record<string, string>,
  name = `${role}-${++counter}`,
): Promise<ServiceProcess> {
  const port = role === 'api' ? await freePort() : 0;
  const server = spawnServer(t, {
    ...env,
    ROLE: role,
    PORT: String(port),
    LOG_LEVEL: role === 'worker' ? 'info' : 'warn',
  });
  const proc: ServiceProcess = Object.assign(server, { role, name, port, url: `http://127.0.0.1:${port}` });
  await until(
    `${name} to be ready`,
    async () => {
      if (!proc.alive) throw new Error(`${name} exited with ${proc.child.exitCode}: ${proc.stderr()}`);
      if (role === 'worker') return proc.logs.some((l) => l.msg === 'circle-actions started');
      const res = await fetch(`${proc.url}/healthz`, { signal: AbortSignal.timeout(1000) });
      return res.status === 200;
    },
    60_000,
    100,
  );
  return proc;
}

// ---------------------------------------------------------------------------------------------
// HTTP over the wire

export interface WireReply<T = any> {
  status: number;
  body: T;
  type: string;
}

/** A JSON request to a process. Network failures (process killed, refused) come back as status 0. */
export async function http<T = any>(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; timeoutMs?: number; headers?: Record<string, string> } = {},
): Promise<WireReply<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // not JSON
    }
    return { status: res.status, body: body as T, type: res.headers.get('content-type') ?? '' };
  } catch (err) {
    return { status: 0, body: { error: String((err as Error).cause ?? err) } as T, type: '' };
  }
}

// ---------------------------------------------------------------------------------------------
// Fixtures and verdicts

export interface FaultEnv extends TestEnv {}

// Short job locks and sweeps, so a killed worker's jobs and missed leases come back within seconds.
const FAULT_SETTINGS = { JOB_LOCK_SECONDS: '2', SWEEP_INTERVAL_SECONDS: '1' };

/** A database of this scenario's own (cloned from the migrated template) and its queue prefix. */
export async function faultEnv(t: Test): Promise<FaultEnv> {
  return createTestEnv(t, FAULT_SETTINGS);
}

/** The same, plus an in-process app on it for setting the scene (owners, circles, projects). */
export async function faultApp(t: Test): Promise<FaultEnv & { app: FastifyInstance }> {
  return buildTestApp(t, FAULT_SETTINGS);
}

/** Runs every invariant check and asserts zero violations, naming any broken one with samples. */
export async function assertInvariants(t: Test, db: Db, scenario: string): Promise<number> {
  const results = await checkInvariants(db);
  const violations = results.reduce((n, r) => n + r.violations, 0);
  for (const r of results)
    t.equal(r.violations, 0, `${scenario}: invariant ${r.name}${r.violations ? ` ${JSON.stringify(r.samples)}` : ''}`);
  return violations;
}

/** One line per scenario for docs/RELIABILITY.md; printed as a TAP comment. */
export function summary(t: Test, scenario: string, figures: Record<string, number | string>): void {
  t.comment(
    `SUMMARY faults/${scenario} ${Object.entries(figures)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
}

export const SEED = Number(process.env.FAULT_SEED ?? Date.now() % 2 ** 31);

/** A small seeded PRNG (mulberry32), so a failing run can be replayed with FAULT_SEED. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The generator of one actor of a scenario (a client, the killer), derived from the seed and the
 * actor's number: each actor draws from its own sequence, so how the actors interleave cannot
 * change what any of them draws, and FAULT_SEED replays every actor's choices.
 */
export function actorRng(seed: number, actor: number): () => number {
  return rng((seed ^ Math.imul(actor + 1, 0x9e3779b1)) >>> 0);
}
