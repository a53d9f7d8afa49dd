import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Test } from 'tap';

// The real entry point as an operator runs it, in a child process: used by the start-up test and
// the fault suite. On the pinned Node, with tsx as a loader inside the same process, so a signal
// sent to the child reaches the server itself.

const NODE = resolve('node_modules/.bin/node');

/**
 * The environment for a child process that runs the service's TypeScript through tsx (the server,
 * the operator's commands): this process's environment, `env` over it, and coverage off.
 *
 * The test runner records coverage in every process it can see, children included, and merges it
 * by file. tsx transpiles each file to different JavaScript than the runner's own TypeScript loader
 * does (whitespace minified, other source maps), so a child's ranges for src/app.ts do not fit the
 * tests' ranges for it. Merged, whichever process's source map the report reads last wins: with a
 * child's, every file showed 100% but one, and the branch threshold failed although every test
 * passed (about one run in three, as coverage files have random names). The children's code is
 * covered by the in-process tests; the children themselves are checked by what they do.
 */
export function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...env, _TAPJS_PROCESSINFO_COVERAGE_: '0' };
}

/** A TCP port free on loopback right now. */
export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface ServerProcess {
  child: ChildProcess;
  /** pino lines written so far (the newest 5000). */
  logs: { msg?: string; level?: number; [k: string]: unknown }[];
  stderr: () => string;
  exited: Promise<number | null>;
  readonly alive: boolean;
  /** Sends the signal (default SIGKILL) if still running and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** tsx's loader by its path, so a child started in another working directory finds it too. */
const TSX_LOADER = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;

/**
 * Starts `src/server.ts` with `env` over this process's environment; killed at teardown. `cwd`:
 * the working directory it starts in (where it looks for `.env`), the project's by default;
 * `without`: variables of this process's environment the child does not inherit.
 */
export function spawnServer(
  t: Test,
  env: Record<string, string>,
  options: { cwd?: string; without?: readonly string[] } = {},
): ServerProcess {
  const childEnvironment = childEnv(env);
  for (const name of options.without ?? []) delete childEnvironment[name];
  const child = spawn(NODE, ['--import', TSX_LOADER, resolve('src/server.ts')], {
    cwd: options.cwd ?? resolve('.'),
    env: childEnvironment,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: ServerProcess['logs'] = [];
  let buffered = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line));
      } catch {
        // not a log line
      }
    }
    if (logs.length > 5000) logs.splice(0, logs.length - 5000);
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-20_000);
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const proc: ServerProcess = {
    child,
    logs,
    exited,
    stderr: () => stderr,
    get alive() {
      return child.exitCode === null && child.signalCode === null;
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (proc.alive) {
        child.kill(signal);
        await exited;
      }
    },
  };
  t.teardown(() => proc.kill('SIGKILL'));
  return proc;
}

/** Polls /readyz until it answers 200; throws when the process exits first or time runs out. */
export async function waitUntilReady(server: ServerProcess, port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!server.alive) throw new Error(`server exited with ${server.child.exitCode}: ${server.stderr()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`server not ready in ${timeoutMs} ms: ${server.stderr()}`);
}
