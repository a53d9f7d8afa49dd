// `npm run bench`: prepares its own database, starts the service as an operator would (one API
// process, one worker process; queues in Redis, then again with no Redis for no_redis), drives it
// with autocannon and measures, in the same run, the same work done straight in SQL. See
// docs/BENCHMARKS.md. `--quick` is the CI smoke run.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { checkInvariants } from '../../src/audit/invariants.js';
import { createDb } from '../../src/infra/postgres.js';
import { SCENARIOS, parseOptions } from './lib/options.js';
import { createFreshDatabase, databaseUrl, dropDatabase, serverVersions } from './lib/database.js';
import { NODE, killAllNow, run, stopAll } from './lib/processes.js';
import { machineInfo, notes, step, table, timed } from './lib/report.js';
import { clearRedis, startService, stopService, type Service } from './lib/service.js';
import type { BenchContext } from './scenarios/context.js';
import { claimNext } from './scenarios/claim-next.js';
import { myTasks, taskBoard, taskRead } from './scenarios/reads.js';
import { breakdown } from './scenarios/breakdown.js';
import { settle } from './scenarios/settle.js';
import { leaseExpiry, noRedis } from './scenarios/queue-backends.js';
import { checkin } from './scenarios/checkin.js';
import { circleHealth, circleLeaderboard } from './scenarios/circle-activity.js';

const RUNNERS: Record<(typeof SCENARIOS)[number], (ctx: BenchContext) => Promise<void>> = {
  claim_next: claimNext,
  task_board: taskBoard,
  task_read: taskRead,
  my_tasks: myTasks,
  checkin,
  breakdown,
  settle,
  lease_expiry: leaseExpiry,
  no_redis: noRedis,
  circle_leaderboard: circleLeaderboard,
  circle_health: circleHealth,
};

// Members hold at most this many live claims (the service's default is 10). Requests rotate over
// enough members that none gets near it; see docs/BENCHMARKS.md for why it is not raised further.
const MAX_LIVE_CLAIMS = 100;

const opts = parseOptions(process.argv.slice(2));
const dbUrl = databaseUrl(opts.databaseName);
const redisUrl = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379';
let service: Service | null = null;
let pool: pg.Pool | null = null;
let cleaning: Promise<void> | null = null;

async function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    if (service) await stopService(service).catch(() => {});
    await stopAll();
    await pool?.end().catch(() => {});
    await clearRedis(redisUrl, opts.queuePrefix).catch((err) =>
      console.error('could not clear the bench queue prefix in Redis:', err.message),
    );
    if (!opts.keepDb)
      await dropDatabase(opts.databaseName).catch((err) =>
        console.error(`could not drop ${opts.databaseName}:`, err.message),
      );
    else step(`kept database ${opts.databaseName}`);
  })();
  return cleaning;
}

// Ctrl-C reaches this process twice (from the terminal and relayed by tsx), so repeats are
// ignored while cleaning up; a third one gives up on cleaning and exits at once.
let signals = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    signals++;
    if (signals === 1) {
      console.error(`\n${signal}: stopping the service and cleaning up...`);
      cleanup().finally(() => process.exit(130));
    } else if (signals >= 3) {
      killAllNow();
      process.exit(130);
    }
  });
}
process.once('exit', killAllNow);

async function redisVersion(): Promise<string> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    return /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<number> {
  const started = performance.now();
  const wanted = SCENARIOS.filter((s) => !opts.only || opts.only.has(s));
  step(
    `circle-actions bench (${opts.quick ? 'quick' : 'full'}): ${wanted.join(', ')}; database ${opts.databaseName}, queue prefix ${opts.queuePrefix}`,
  );
  if (opts.build)
    await timed('npm run build', () =>
      run(NODE, [path.resolve('node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], 'npm run build'),
    );
  if (opts.cpuProfileDir) mkdirSync(opts.cpuProfileDir, { recursive: true });

  await timed(`creating database ${opts.databaseName}`, () => createFreshDatabase(opts.databaseName));
  await clearRedis(redisUrl, opts.queuePrefix);
  pool = new pg.Pool({ connectionString: dbUrl, max: 4 });
  const machine = machineInfo({ postgres: await serverVersions(pool), redis: await redisVersion() });
  step(
    `machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryMb} MB, load ${machine.loadAverage.join(' ')}; Node ${machine.node}, Postgres ${machine.postgres}, Redis ${machine.redis}`,
  );

  service = await timed('starting the service (ROLE=api and ROLE=worker processes)', () =>
    startService({
      databaseUrl: dbUrl,
      queuePrefix: opts.queuePrefix,
      maxLiveClaims: MAX_LIVE_CLAIMS,
      cpuProfileDir: opts.cpuProfileDir,
    }),
  );
  const ctx: BenchContext = {
    opts,
    databaseUrl: dbUrl,
    pool,
    service,
    maxLiveClaims: MAX_LIVE_CLAIMS,
    results: [],
    failures: [],
  };

  for (const name of wanted) {
    if (signals > 0) break;
    try {
      await timed(`scenario ${name}`, () => RUNNERS[name](ctx));
    } catch (err) {
      // One broken scenario must not hide the others' figures.
      ctx.failures.push(`${name} did not complete: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      step(`scenario ${name} FAILED: ${err instanceof Error ? err.message : String(err)}`);
    }
    // no_redis replaces the service with one that has no Redis: stop that one at the end.
    service = ctx.service;
  }

  await timed('checking every invariant on the bench database', async () => {
    const db = createDb(dbUrl, 2);
    try {
      const broken = (await checkInvariants(db)).filter((r) => r.violations > 0);
      for (const r of broken)
        ctx.failures.push(`invariant ${r.name} violated (${r.violations} rows): ${JSON.stringify(r.samples)}`);
    } finally {
      await db.destroy();
    }
  });

  await stopService(service);
  service = null;
  const seconds = (performance.now() - started) / 1000;
  console.log(`\n${table(ctx.results)}\n\n${notes(ctx.results)}\n`);
  console.log(`${opts.quick ? 'quick' : 'full'} run took ${seconds.toFixed(0)} s`);
  if (opts.jsonFile) {
    const file = path.resolve(opts.jsonFile);
    mkdirSync(path.dirname(file), { recursive: true });
    const scenarios = ctx.results.map(({ name, value, unit, limit, ratio, target, met, notes: n }) => ({
      name,
      value,
      unit,
      limit,
      ratio,
      target,
      met,
      notes: n,
    }));
    writeFileSync(
      file,
      `${JSON.stringify({ scenarios, machine: { ...machine, quick: opts.quick, seconds: Math.round(seconds), date: new Date().toISOString() } }, null, 2)}\n`,
    );
    step(`results written to ${file}`);
  }
  if (ctx.failures.length) {
    console.error(`\nthe run found wrong results:\n${ctx.failures.map((f) => `- ${f}`).join('\n')}`);
    return 1;
  }
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error('\nbench failed:', err instanceof Error ? (err.stack ?? err.message) : err);
  const running = service as Service | null;
  if (running) console.error(`API output:\n${running.api.tail()}\nworker output:\n${running.worker.tail()}`);
} finally {
  await cleanup();
}
process.exit(code);
