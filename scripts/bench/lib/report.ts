import os from 'node:os';
import { readFileSync } from 'node:fs';

// Results, progress lines and the final table.

export interface Scenario {
  name: string;
  /** The service's figure (requests/s, ms wall time...). */
  value: number;
  unit: string;
  /** The same work done straight in SQL (or behind a bare route), measured in the same run. */
  limit: number;
  /** value / limit: for throughputs the share of the limit reached, for times and memory how
   * many times the limit it took. `target` says which way is better. */
  ratio: number;
  /** The target for `ratio`, e.g. ">= 0.8". */
  target: string;
  /** null for reference figures that have no target. */
  met: boolean | null;
  notes: string;
}

const tty = process.stdout.isTTY;
let lastPrinted = 0;

/** A status line that rewrites itself on a terminal; elsewhere (CI logs) printed once a second. */
export function progress(text: string, final = false): void {
  if (tty) {
    process.stdout.write(`\r\x1b[K  ${text}${final ? '\n' : ''}`);
  } else if (final || performance.now() - lastPrinted >= 1000) {
    lastPrinted = performance.now();
    process.stdout.write(`  ${text}\n`);
  }
}

export function step(text: string): void {
  if (tty) process.stdout.write('\r\x1b[K');
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${text}`);
}

export async function timed<T>(label: string, run: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  step(`${label}...`);
  const result = await run();
  step(`${label}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return result;
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function table(rows: Scenario[]): string {
  const header = ['scenario', 'service', 'limit', 'ratio', 'target', 'met'];
  const lines = rows.map((r) => [
    r.name,
    `${fmt(r.value, r.value < 100 ? 1 : 0)} ${r.unit}`,
    `${fmt(r.limit, r.limit < 100 ? 1 : 0)} ${r.unit}`,
    r.ratio.toFixed(2),
    r.target,
    r.met === null ? '-' : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const out = [row(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(row)];
  return out.join('\n');
}

export function notes(rows: Scenario[]): string {
  return rows.map((r) => `- ${r.name}: ${r.notes}`).join('\n');
}

export function machineInfo(versions: { postgres: string; redis: string }) {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel;
  } catch {
    /* not Linux */
  }
  return {
    cpus: os.availableParallelism(),
    cpuModel,
    memoryMb: Math.round(os.totalmem() / 2 ** 20),
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
    platform: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: versions.postgres,
    redis: versions.redis,
  };
}
