import type pg from 'pg';
import { describeCpu, startChild, type CpuUse } from './processes.js';
import { startCpuMeter } from './cpu.js';
import { fmt, progress } from './report.js';
import type { Statement } from './statements.js';

// The parent side of the SQL limit: starts sql-load.child.ts as its own process and waits for it.

export interface SqlLoadSpec {
  databaseUrl: string;
  connections: number;
  warmupSeconds: number;
  seconds: number;
  /** Statements run in order on one connection per iteration; named ones as prepared statements. */
  steps: Statement[];
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

/** Runs the load in its own process; `afterWarmup` runs between the warm-up and the measurement. */
export async function sqlLoad(
  spec: SqlLoadSpec,
  label: string,
  cpu: { pool: pg.Pool; redisUrl: string },
  afterWarmup?: () => Promise<unknown>,
): Promise<SqlLoadResult> {
  const child = startChild('scripts/bench/sql-load.child.ts', spec);
  let meter: Promise<() => Promise<CpuUse>> | null = null;
  let used: Promise<CpuUse> | null = null;
  let seconds = 0;
  return new Promise<SqlLoadResult>((resolve, reject) => {
    let result: Promise<SqlLoadResult> | null = null;
    let error: string | null = null;
    child.on('message', (m: { type: string; rate?: number; result?: Omit<SqlLoadResult, 'cpu'>; message?: string }) => {
      if (m.type === 'warm') {
        Promise.resolve(afterWarmup?.()).then(
          () => child.send('measure'),
          (err: Error) => {
            error = `after the warm-up: ${err.message}`;
            child.kill();
          },
        );
      } else if (m.type === 'start') {
        meter = startCpuMeter(cpu.pool, cpu.redisUrl, { 'sql client': [child.pid!] }, false);
      } else if (m.type === 'tick') {
        seconds++;
        progress(`${label}: ${seconds}/${spec.seconds} s, ${fmt(m.rate!)} statements/s`);
      } else if (m.type === 'end') {
        used = meter!.then((stop) => stop()).finally(() => child.send('ack'));
      } else if (m.type === 'result') {
        const r = m.result!;
        result = used!.then((cpu) => ({ ...r, cpu: describeCpu(cpu, r.ok) }));
      } else if (m.type === 'error') {
        error = m.message!;
      }
    });
    child.once('exit', (code) => {
      progress(`${label}: done`, true);
      if (result) result.then(resolve, reject);
      else reject(new Error(`${label}: SQL load failed (exit ${code}): ${error ?? 'no result'}`));
    });
  });
}
