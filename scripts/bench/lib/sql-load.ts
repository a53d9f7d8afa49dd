import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NODE, ROOT, cpuMeter, describeCpu, track } from './processes.js';
import { fmt, progress } from './report.js';

// The parent side of the SQL limit: starts sql-load.child.ts as its own process and waits for it.

export interface SqlLoadSpec {
  databaseUrl: string;
  connections: number;
  warmupSeconds: number;
  seconds: number;
  /** Statements run in order on one connection per iteration. */
  steps: { text: string; values: unknown[] }[];
  /** A value equal to one of these keys is replaced by the list's (iteration % length)th entry. */
  rotations: Record<string, string[]>;
  transaction?: boolean;
}

export interface SqlLoadResult {
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  /** Iterations whose last statement returned no row (e.g. nothing left to claim). */
  empty: number;
  seconds: number;
  cpu: string;
}

export async function sqlLoad(spec: SqlLoadSpec, label: string): Promise<SqlLoadResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ca-bench-'));
  const file = path.join(dir, 'spec.json');
  writeFileSync(file, JSON.stringify(spec));
  try {
    const child = track(spawn(NODE, ['--import', 'tsx', 'scripts/bench/sql-load.child.ts', file], {
      cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }));
    let meter: (() => Record<string, number>) | null = null;
    let cpu: Record<string, number> = {};
    let seconds = 0;
    return await new Promise<SqlLoadResult>((resolve, reject) => {
      let result: Omit<SqlLoadResult, 'cpu'> | null = null;
      let error: string | null = null;
      child.on('message', (m: { type: string; rate?: number; result?: Omit<SqlLoadResult, 'cpu'>; message?: string }) => {
        if (m.type === 'start') {
          meter = cpuMeter({ 'sql client': child.pid! });
        } else if (m.type === 'tick') {
          seconds++;
          progress(`${label}: ${seconds}/${spec.seconds} s, ${fmt(m.rate!)} statements/s`);
        } else if (m.type === 'result') {
          cpu = meter?.() ?? {};
          result = m.result!;
        } else if (m.type === 'error') {
          error = m.message!;
        }
      });
      child.once('exit', (code) => {
        progress(`${label}: done`, true);
        if (result) resolve({ ...result, cpu: describeCpu(cpu) });
        else reject(new Error(`${label}: SQL load failed (exit ${code}): ${error ?? 'no result'}`));
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
