import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NODE, ROOT, stop, track } from './processes.js';
import type { Statement } from './statements.js';

// The parent side of the HTTP limit: starts bare-route.child.ts and hands back its URL.

export interface BareRouteSpec {
  databaseUrl: string;
  /** The service's pool size, so both sides can hold as many statements in flight. */
  poolSize: number;
  steps: Statement[];
  rotations: Record<string, string[]>;
}

export interface BareRoute {
  /** The server's base URL; the route is `path` (GET or POST, any body, headers ignored). */
  url: string;
  path: string;
  pid: number;
  stop(): Promise<void>;
}

/** The pool size the service is started with in the bench (its default unless overridden). */
export const servicePoolSize = () => Number(process.env.BENCH_DATABASE_POOL_SIZE) || 20;

export async function startBareRoute(spec: BareRouteSpec): Promise<BareRoute> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ca-bench-'));
  const file = path.join(dir, 'spec.json');
  writeFileSync(file, JSON.stringify(spec));
  const child = track(spawn(NODE, ['--import', 'tsx', 'scripts/bench/bare-route.child.ts', file], {
    cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  }));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { type: string; port?: number; message?: string }) =>
        (m.type === 'listening' ? resolve(m.port!) : reject(new Error(`bare route: ${m.message}`))));
      child.once('exit', (code) => reject(new Error(`bare route exited before listening (exit ${code})`)));
    });
    return { url: `http://127.0.0.1:${port}`, path: '/bare', pid: child.pid!, stop: () => stop(child) };
  } catch (err) {
    await stop(child);
    throw err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
