import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

// Processes the bench starts (the service's roles, the SQL load child) and what it reads about
// them from /proc: CPU time and peak memory. Every child is stopped on exit, error or Ctrl-C.

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
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
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

/** Starts one role of the service the way an operator would: node on the built output. */
export function startRole(role: 'api' | 'worker', env: Record<string, string>, cpuProfileDir: string | null): ServiceProcess {
  const args = cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`, `--cpu-prof-name=${role}-\${pid}.cpuprofile`] : [];
  const child = track(spawn(NODE, [...args, 'dist/src/server.js'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, ROLE: role },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
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
 * Where the CPU went during a measurement: the processes named (percent of one core each) and the
 * whole machine (percent of all cores). Shows whether the load generator and the service competed.
 */
export function cpuMeter(pids: Record<string, number>) {
  const self = process.cpuUsage();
  const start = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const machine = machineCpu();
  const t0 = performance.now();
  return () => {
    const wall = (performance.now() - t0) / 1000;
    const used = process.cpuUsage(self);
    const out: Record<string, number> = { loadgen: Math.round(((used.user + used.system) / 1e6 / wall) * 100) };
    for (const [k, pid] of Object.entries(pids)) out[k] = Math.round(((cpuSeconds(pid) - start[k]!) / wall) * 100);
    const m = machineCpu();
    out.machine = m.total > machine.total ? Math.round(((m.busy - machine.busy) / (m.total - machine.total)) * 100) : 0;
    return out;
  };
}

export const describeCpu = (cpu: Record<string, number>) =>
  `CPU ${Object.entries(cpu).filter(([k]) => k !== 'machine').map(([k, v]) => `${k} ${v}%`).join(', ')} of one core; machine ${cpu.machine}% busy`;
