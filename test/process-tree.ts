import { readdirSync, readFileSync } from 'node:fs';

// Which processes a process started, read from /proc (Linux): to prove that stopping the service
// left none of them behind. A process is named by its pid and start time, so a pid the kernel
// hands to another program later does not count as the same process.

export interface ProcessId {
  pid: number;
  startTime: string;
  command: string;
}

function readStat(pid: number): { state: string; ppid: number; startTime: string; command: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const command = stat.slice(stat.indexOf('(') + 1, close);
    // Fields after the command name start at field 3 (state); ppid is field 4, start time field 22.
    const fields = stat.slice(close + 2).split(' ');
    return { state: fields[0] ?? '', ppid: Number(fields[1]), startTime: fields[19] ?? '', command };
  } catch {
    return null;
  }
}

/** The process and every process below it, as they run now. */
export function processTree(root: number): ProcessId[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (!stat) continue;
    children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), pid]);
  }
  const found: ProcessId[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift() as number;
    const stat = readStat(pid);
    if (!stat) continue;
    found.push({ pid, startTime: stat.startTime, command: stat.command });
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

/** Those of `processes` still running (same pid, same start time). */
export function stillRunning(processes: ProcessId[]): ProcessId[] {
  return processes.filter((p) => {
    const stat = readStat(p.pid);
    // A zombie is gone in all but its exit status: its parent has not collected it yet.
    return stat !== null && stat.startTime === p.startTime && stat.state !== 'Z';
  });
}

/** Every running process whose command line contains `text` (a data directory, say). */
export function processesMentioning(text: string): ProcessId[] {
  const found: ProcessId[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const stat = readStat(pid);
      if (stat && stat.state !== 'Z' && cmdline.includes(text))
        found.push({ pid, startTime: stat.startTime, command: stat.command });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
