import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

// One service process per data folder. Two embedded PostgreSQL servers on one data directory would
// corrupt it, and Postgres's own postmaster.pid check comes too late: by then the second process has
// already read the folder's secrets and picked a port. So the folder carries a lock file of our own,
// taken before anything else in it is touched and removed when the embedded server has stopped.
//
// A process that crashed (SIGKILL, power loss) leaves its lock file behind. The stale rule: a lock
// whose process no longer runs may be taken over. "Runs" means the same process, not only the same
// pid: on Linux the lock records the boot and the process's start time, so a pid reused after a
// reboot or by an unrelated program does not keep the folder locked forever.

const LOCK_FILE = 'circle-actions.lock';

interface LockOwner {
  pid: number;
  host: string;
  /** boot id and start time of the process (Linux), or null where the system does not tell. */
  identity: string | null;
}

/** Another process holds the folder: the message is one line meant for the operator. */
export class DataFolderInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly owner: LockOwner,
  ) {
    const where = owner.host === hostname() ? `pid ${owner.pid}` : `pid ${owner.pid} on ${owner.host}`;
    super(
      `the data folder ${dataDir} is in use by another circle-actions process (${where}): stop it first, or set DATA_DIR to another folder` +
        (owner.host === hostname() ? '' : ` (if that process is gone, delete ${join(dataDir, LOCK_FILE)})`),
    );
  }
}

/** Boot id and start time of a running process, on Linux; null elsewhere or when it does not run. */
function processIdentity(pid: number): string | null {
  try {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may itself hold spaces and parentheses;
    // the fields after its closing parenthesis start at field 3, and the start time is field 22.
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return startTime ? `${bootId}/${startTime}` : null;
  } catch {
    return null;
  }
}

function isRunning(owner: LockOwner): boolean {
  // A process on another machine sharing the folder cannot be checked from here: assume it runs.
  if (owner.host !== hostname()) return true;
  if (owner.identity !== null && processIdentity(process.pid) !== null)
    return processIdentity(owner.pid) === owner.identity;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseOwner(text: string): LockOwner | null {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (!Number.isInteger(value.pid) || typeof value.host !== 'string') return null;
    return { pid: value.pid as number, host: value.host, identity: value.identity ?? null };
  } catch {
    return null;
  }
}

const isCode = (err: unknown, code: string) => (err as NodeJS.ErrnoException)?.code === code;
const readIfPresent = (path: string) =>
  readFile(path, 'utf8').catch((err: unknown) => {
    if (isCode(err, 'ENOENT')) return null;
    throw err;
  });

export interface DataFolderLock {
  readonly path: string;
  /** Whether a lock left by a crashed process was taken over. */
  readonly tookOverFrom: LockOwner | null;
  release(): Promise<void>;
  /** For process 'exit' handlers, which cannot wait. */
  releaseSync(): void;
}

/**
 * Takes the folder's lock or throws DataFolderInUseError. The lock file appears with its content
 * in one step (written aside, then hard-linked into place, which fails if the name exists), so a
 * reader never sees a half-written lock.
 */
export async function lockDataFolder(dataDir: string): Promise<DataFolderLock> {
  const path = join(dataDir, LOCK_FILE);
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), identity: processIdentity(process.pid) });
  let tookOverFrom: LockOwner | null = null;
  for (let attempt = 0; attempt < 10; attempt++) {
    const aside = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(aside, mine, { mode: 0o600 });
    try {
      await link(aside, path);
      return ownedLock(path, mine, tookOverFrom);
    } catch (err) {
      if (!isCode(err, 'EEXIST')) throw err;
    } finally {
      await unlink(aside);
    }
    const held = await readIfPresent(path);
    if (held === null) continue; // released meanwhile: try again
    const owner = parseOwner(held);
    if (owner && isRunning(owner)) throw new DataFolderInUseError(dataDir, owner);
    // Stale (or unreadable: never written by a running process, see above). Move it out of the
    // way in one step and check that what moved is what was judged stale: another process taking
    // over the same stale lock may have replaced it meanwhile, and its fresh lock goes back. (A
    // third process linking its own lock in the microseconds before it is back would also win:
    // three starts on one folder at the same instant, right after a crash. Not worth a second lock.)
    const moved = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      await rename(path, moved);
    } catch (err) {
      if (isCode(err, 'ENOENT')) continue;
      throw err;
    }
    const movedText = await readFile(moved, 'utf8');
    if (movedText !== held) await link(moved, path).catch(() => {});
    else tookOverFrom = owner ?? { pid: 0, host: hostname(), identity: null };
    await unlink(moved);
  }
  throw new Error(`could not lock ${path}: it kept changing hands`);
}

function ownedLock(path: string, mine: string, tookOverFrom: LockOwner | null): DataFolderLock {
  let held = true;
  return {
    path,
    tookOverFrom,
    async release() {
      if (!held) return;
      held = false;
      // Only our own lock is removed: never one a later process took over.
      if ((await readIfPresent(path)) === mine) await unlink(path).catch(() => {});
    },
    // Not guarded by `held`: the process may exit (a shutdown over its grace period) while
    // release() waits for its read, and the exit hook must still free the folder. Removing the
    // file only while it is ours makes a second removal harmless.
    releaseSync() {
      held = false;
      try {
        if (readFileSync(path, 'utf8') === mine) unlinkSync(path);
      } catch {
        // already gone
      }
    },
  };
}
