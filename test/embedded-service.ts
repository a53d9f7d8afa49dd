import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { flushPrefix } from './helper.js';
import { processTree, stillRunning, type ProcessId } from './process-tree.js';
import { freePort, spawnServer, waitUntilReady, type ServerProcess } from './service-process.js';
import { randomBytes } from 'node:crypto';

// The service started as `npm start` on a bare machine runs it: no DATABASE_URL, no JWT_SECRET, no
// REDIS_URL, only DATA_DIR and PORT, driven over HTTP. Its queues live in the embedded PostgreSQL.

export interface Service extends ServerProcess {
  port: number;
  base: string;
}

/** Starts the service as an operator would, with only DATA_DIR and PORT set. */
export async function startService(t: Test, dataDir: string, queuePrefix: string, port?: number): Promise<Service> {
  port ??= await freePort();
  const server = spawnServer(t, {
    // Empty counts as unset: whatever the test runner's environment holds does not leak in.
    DATABASE_URL: '',
    JWT_SECRET: '',
    REDIS_URL: '',
    QUEUE_BACKEND: '',
    DATA_DIR: dataDir,
    QUEUE_PREFIX: queuePrefix,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
    PASSWORD_HASH_COST: '10',
  });
  return Object.assign(server, { port, base: `http://127.0.0.1:${port}` });
}

export async function startReady(t: Test, dataDir: string, queuePrefix: string, what: string): Promise<Service> {
  const started = Date.now();
  const service = await startService(t, dataDir, queuePrefix);
  await waitUntilReady(service, service.port, 90_000);
  t.comment(`${what}: /readyz answered 200 after ${Date.now() - started} ms`);
  return service;
}

export async function api(
  service: Service,
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${service.base}${path}`, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export async function expectStatus(service: Service, status: number, method: string, path: string, options = {}) {
  const res = await api(service, method, path, options);
  if (res.status !== status)
    throw new Error(`${method} ${path}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** The service's processes while it runs: itself, the embedded PostgreSQL and its backends. */
export function serviceProcesses(service: Service): ProcessId[] {
  return processTree(service.child.pid as number);
}

/** Stops the service with `signal`; asserts a clean exit and that none of its processes remain. */
export async function stopService(t: Test, service: Service, signal: NodeJS.Signals, dataDir: string): Promise<void> {
  const processes = serviceProcesses(service);
  t.ok(
    processes.some((p) => p.command === 'postgres'),
    `the embedded PostgreSQL runs under the service (${processes.length} processes)`,
  );
  service.child.kill(signal);
  t.equal(await service.exited, 0, `exit code 0 after ${signal}; stderr: ${service.stderr()}`);
  t.same(stillRunning(processes), [], `no process of the service remains after ${signal}`);
  t.notOk(existsSync(join(dataDir, 'circle-actions.lock')), 'the data folder is unlocked');
}

/** A fresh data folder and queue prefix, removed after the test. */
export async function freshDataFolder(t: Test): Promise<{ dataDir: string; queuePrefix: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ca-embedded-'));
  const queuePrefix = `catestemb${randomBytes(6).toString('hex')}`;
  t.teardown(async () => {
    await rm(dataDir, { recursive: true, force: true });
    await flushPrefix(queuePrefix);
  });
  return { dataDir, queuePrefix };
}
