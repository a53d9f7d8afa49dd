// `npm run test:soak`: runs the whole `npm test` several times in a row while the benchmarks loop
// beside it, and stops at the first failure. It is the proof that the suite does not depend on
// timing: a test that needs a quiet machine fails here. Each run's full output is kept under
// .soak/, and the summary (one line per run) is printed as a Markdown table for docs/RELIABILITY.md.
//
//   npm run test:soak -- --runs 10          ten runs with `npm run bench -- --quick` looping beside them
//   npm run test:soak -- --runs 3 --no-load three runs on a quiet machine
//
// The load runs against SOAK_PG_URL / SOAK_REDIS_URL when set (another Postgres cluster and Redis,
// so the two never compete for connections, only for the machine), else the same servers as the
// tests, in a database and queue prefix of its own.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, '.soak');

interface RunResult {
  run: number;
  passed: boolean;
  assertions: string;
  files: number;
  minutes: number;
  load: string;
  failures: string[];
}

/** What a finished tap run printed: its totals line and the test files that failed. */
function readTapOutput(text: string): { assertions: string; files: number; failures: string[] } {
  const totals = /^# \{ total: (\d+), pass: (\d+)/m.exec(text);
  const files = text.match(/^(?:not )?ok \d+ - test\//gm) ?? [];
  const failures = [...text.matchAll(/^not ok \d+ - (test\/\S+)/gm)].map((m) => m[1] as string);
  const assertions = totals ? `${totals[2]}/${totals[1]}` : 'no totals';
  return { assertions, files: files.length, failures };
}

function formatLoad(): string {
  return loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
}

/** Starts `npm run bench -- --quick` over and over until stopped; counts the rounds and failures. */
function startLoad(): { stop: () => Promise<void>; rounds: () => string } {
  let rounds = 0;
  let failed = 0;
  let current: ChildProcess | undefined;
  let stopping = false;
  const log = createWriteStream(path.join(OUT, 'load.log'));
  const env = {
    ...process.env,
    BENCH_DATABASE: 'circle_actions_soak',
    BENCH_QUEUE_PREFIX: 'casoak',
    ...(process.env.SOAK_PG_URL && { BENCH_PG_URL: process.env.SOAK_PG_URL }),
    ...(process.env.SOAK_REDIS_URL && { BENCH_REDIS_URL: process.env.SOAK_REDIS_URL }),
  };
  const next = () => {
    if (stopping) return;
    // detached: the bench starts its own children; stopping kills the whole group.
    current = spawn('npm', ['run', 'bench', '--', '--quick'], { cwd: ROOT, env, detached: true });
    current.stdout?.pipe(log, { end: false });
    current.stderr?.pipe(log, { end: false });
    current.once('exit', (code) => {
      if (stopping) return;
      rounds += 1;
      if (code !== 0) failed += 1;
      next();
    });
  };
  next();
  return {
    rounds: () => `${rounds} bench rounds${failed ? `, ${failed} failed` : ''}`,
    stop: async () => {
      stopping = true;
      await stopGroup(current);
      log.end();
    },
  };
}

/** Stops a process started `detached` together with everything it started (its process group). */
async function stopGroup(child: ChildProcess | undefined): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(-child.pid, 'SIGTERM');
  await exited;
}

let runningSuite: ChildProcess | undefined;
let stopped = false;

/** One `npm test`, its output in .soak/run-N.log, a progress line as each test file finishes. */
function runSuite(run: number, runs: number): Promise<RunResult> {
  const started = Date.now();
  const logPath = path.join(OUT, `run-${run}.log`);
  const log = createWriteStream(logPath);
  // detached, so that stopping the soak stops tap and every test file it started.
  const child = spawn('npm', ['test'], { cwd: ROOT, env: process.env, detached: true });
  runningSuite = child;
  let text = '';
  let done = 0;
  const loadSeen: number[] = [];
  const sample = setInterval(() => loadSeen.push(loadavg()[0] ?? 0), 30_000);
  const onData = (chunk: Buffer) => {
    log.write(chunk);
    const piece = chunk.toString();
    text += piece;
    const finished = piece.match(/^(?:not )?ok \d+ - test\//gm)?.length ?? 0;
    if (finished) {
      done += finished;
      const elapsed = ((Date.now() - started) / 60_000).toFixed(1);
      process.stdout.write(`\r  run ${run}/${runs}: ${done} test files done, ${elapsed} min, load ${formatLoad()}   `);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearInterval(sample);
      log.end();
      process.stdout.write('\n');
      const read = readTapOutput(text);
      const low = Math.min(...loadSeen, loadavg()[0] ?? 0);
      const high = Math.max(...loadSeen, loadavg()[0] ?? 0);
      resolve({
        run,
        passed: code === 0 && read.failures.length === 0,
        assertions: read.assertions,
        files: read.files,
        minutes: (Date.now() - started) / 60_000,
        load: `${low.toFixed(1)} to ${high.toFixed(1)}`,
        failures: code === 0 ? read.failures : [...read.failures, `npm test exited ${code}`],
      });
    });
  });
}

function table(results: RunResult[], commit: string): string {
  const lines = [
    `| run | code | result | assertions | files | time | load average |`,
    `|---|---|---|---|---|---|---|`,
    ...results.map(
      (r) =>
        `| ${r.run} | ${commit} | ${r.passed ? 'passed' : `FAILED: ${r.failures.join(', ')}`} | ${r.assertions} | ` +
        `${r.files} | ${r.minutes.toFixed(1)} min | ${r.load} |`,
    ),
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '10' }, 'no-load': { type: 'boolean', default: false } },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a positive whole number');
  mkdirSync(OUT, { recursive: true });
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'test', 'db'], { cwd: ROOT }).length > 0;
  const label = dirty ? `${commit}+changes` : commit;
  console.log(
    `soak: ${runs} runs of npm test on ${label}${values['no-load'] ? '' : ', bench --quick looping beside them'}`,
  );

  const load = values['no-load'] ? undefined : startLoad();
  const stopLoad = async () => load?.stop();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stopped = true;
      console.log(`\n${signal}: stopping the test run and the load`);
      void Promise.all([stopLoad(), stopGroup(runningSuite)]).then(() => process.exit(130));
    });
  }

  const results: RunResult[] = [];
  for (let run = 1; run <= runs; run++) {
    const result = await runSuite(run, runs);
    if (stopped) return;
    results.push(result);
    console.log(
      `  run ${run}/${runs} ${result.passed ? 'passed' : 'FAILED'}: ${result.assertions} assertions, ` +
        `${result.minutes.toFixed(1)} min, load ${result.load}${load ? `, ${load.rounds()} so far` : ''}`,
    );
    writeFileSync(path.join(OUT, 'summary.md'), `${table(results, label)}\n`);
    if (!result.passed) break;
  }
  await stopLoad();
  console.log(`\n${table(results, label)}\n`);
  if (load) console.log(`load: ${load.rounds()}`);
  const passedInARow = results.findIndex((r) => !r.passed);
  if (passedInARow !== -1) {
    console.log(`failed on run ${passedInARow + 1}; its output is in .soak/run-${passedInARow + 1}.log`);
    process.exitCode = 1;
  } else {
    console.log(`${runs} runs in a row passed`);
  }
}

await main();
