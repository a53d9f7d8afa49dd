import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { availableParallelism, tmpdir } from 'node:os';
import { SETTING_NAMES } from '../../../src/config.js';

// Processes the bench starts (the service's roles, the SQL load and bare route children) and what
// it reads about them from /proc: CPU time and peak memory. Every child is stopped on exit, error
// or Ctrl-C.

export const ROOT = path.resolve(import.meta.dirname, '../../..');
export const NODE = path.join(ROOT, 'node_modules/.bin/node');
export const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

const children = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** SIGTERM to every child still running, SIGKILL to those still there after `graceMs`. */
export async function stopAll(graceMs = 10_000): Promise<void> {
  const running = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(running.map((c) => stop(c, graceMs)));
}

/**
 * Starts one of the bench's own child scripts (TypeScript, through tsx) with an IPC channel. Its
 * spec goes through a temporary file (too large for an argument: thousands of rotated ids), read
 * with readSpec() in the child and removed when the child exits.
 */
export function startChild(script: string, spec: unknown): ChildProcess {
  const dir = mkdtempSync(path.join(tmpdir(), 'ca-bench-'));
  const file = path.join(dir, 'spec.json');
  writeFileSync(file, JSON.stringify(spec));
  const child = track(
    spawn(NODE, ['--import', 'tsx', script, file], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  child.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return child;
}

export async function stop(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Last resort from a synchronous 'exit' handler. */
export function killAllNow(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function run(command: string, args: string[], label: string): Promise<void> {
  const child = track(spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  child.stdout!.on('data', (d) => {
    output += d;
  });
  child.stderr!.on('data', (d) => {
    output += d;
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${label} failed (exit ${code}):\n${output.slice(-4000)}`);
}

export interface ServiceProcess {
  role: 'api' | 'worker';
  child: ChildProcess;
  pid: number;
  /** The last lines it wrote, for error messages. */
  tail(): string;
}

// The worker's command line as the README gives it to operators (and `npm start` runs it).
const WORKER_NODE_FLAGS = ['--max-semi-space-size=16'];

/** Starts one role of the service the way an operator would: node on the built output. */
const UNSET_SETTINGS: Record<string, string> = Object.fromEntries(SETTING_NAMES.map((name) => [name, '']));

export function startRole(
  role: 'api' | 'worker',
  env: Record<string, string>,
  cpuProfileDir: string | null,
): ServiceProcess {
  const profile = cpuProfileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`, `--cpu-prof-name=${role}-\${pid}.cpuprofile`]
    : [];
  const args = [...(role === 'worker' ? WORKER_NODE_FLAGS : []), ...profile];
  const child = track(
    spawn(NODE, [...args, 'dist/src/server.js'], {
      cwd: ROOT,
      // Every setting the bench does not give is set empty (unset, for the service): otherwise the
      // server would read a developer's .env from the working directory into the measurement.
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...UNSET_SETTINGS, ...env, ROLE: role },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const lines: string[] = [];
  const keep = (d: Buffer) => {
    lines.push(...d.toString().split('\n').filter(Boolean));
    if (lines.length > 50) lines.splice(0, lines.length - 50);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { role, child, pid: child.pid!, tail: () => lines.join('\n') };
}

const CLK_TCK = 100;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const n = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = n[3]! + (n[4] ?? 0);
    const total = n.reduce((a, b) => a + b, 0);
    return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** Peak resident memory (VmHWM) of a process in MB. */
export function peakRssMb(pid: number): number {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : 0;
  } catch {
    return 0;
  }
}

export function rssMb(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Where the CPU went during a measurement: each named group of processes (the API, the Postgres
 * backends serving the bench database, Redis), this process (autocannon runs in it) and the whole
 * machine. Returns CPU seconds per group, so callers can divide by the requests served.
 *
 * Counted per process: one that exits during the measurement (a backend of the previous load
 * closing) adds nothing rather than taking its earlier CPU away, and `stop` may name processes of a
 * group that started during the measurement (new backends), counted from zero.
 */
export function cpuMeter(groups: Record<string, number[]>, includeSelf = true) {
  const self = process.cpuUsage();
  const start = new Map(
    Object.values(groups)
      .flat()
      .map((pid) => [pid, cpuSeconds(pid)]),
  );
  const machine = machineCpu();
  const t0 = performance.now();
  return (joined: Record<string, number[]> = {}): CpuUse => {
    const wall = (performance.now() - t0) / 1000;
    const used = process.cpuUsage(self);
    const seconds: Record<string, number> = includeSelf ? { autocannon: (used.user + used.system) / 1e6 } : {};
    for (const [k, pids] of Object.entries(groups)) {
      const all = new Set([...pids, ...(joined[k] ?? [])]);
      let total = 0;
      for (const pid of all) {
        const now = cpuSeconds(pid);
        if (now > 0) total += Math.max(0, now - (start.get(pid) ?? 0));
      }
      seconds[k] = total;
    }
    const m = machineCpu();
    const busy = m.total > machine.total ? (m.busy - machine.busy) / (m.total - machine.total) : 0;
    return { wall, seconds, machineBusy: busy };
  };
}

export interface CpuUse {
  wall: number;
  /** CPU seconds used by each group during the measurement. */
  seconds: Record<string, number>;
  /** Fraction of all cores busy (everything on the machine, other users included). */
  machineBusy: number;
}

/** "CPU per request: api 210 µs, postgres 650 µs, ...; machine 97% busy". */
export function describeCpu(cpu: CpuUse, requests: number): string {
  const per = Object.entries(cpu.seconds)
    .filter(([, s]) => s > 0.005)
    .map(([k, s]) => `${k} ${Math.round((s / Math.max(1, requests)) * 1e6)} µs`);
  const known = Object.values(cpu.seconds).reduce((a, b) => a + b, 0);
  const cores = cpu.machineBusy * availableParallelism();
  return `CPU per request: ${per.join(', ')}; machine ${Math.round(cpu.machineBusy * 100)}% busy, ${Math.round(Math.max(0, cores - known / cpu.wall) * 100)}% of a core used by other processes`;
}
