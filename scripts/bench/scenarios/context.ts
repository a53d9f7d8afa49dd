import type pg from 'pg';
import type { Options } from '../lib/options.js';
import type { Service } from '../lib/service.js';
import type { Scenario } from '../lib/report.js';
import { createCircle, createProject, registerOwner, seedMembers, seedTasks, type Owner } from '../lib/seed.js';
import { mintAccessToken } from '../lib/service.js';
import { fmt, timed } from '../lib/report.js';
import { startBareRoute } from '../lib/bare-route.js';
import { loadConfig } from '../../../src/config.js';
import type { Statement } from '../lib/statements.js';
import { httpLoad, type HttpLoad, type LoadResult } from '../lib/http-load.js';
import { startCpuMeter } from '../lib/cpu.js';
import { describeCpu } from '../lib/processes.js';

export interface BenchContext {
  opts: Options;
  databaseUrl: string;
  /** A small pool on the bench database for seeding, resets and checks. */
  pool: pg.Pool;
  service: Service;
  /** Settings the service was started with that scenarios depend on. */
  maxLiveClaims: number;
  results: Scenario[];
  /** Checks that failed (wrong results, not slow ones): they make the run exit non-zero. */
  failures: string[];
}

/** The board shared by claim_next, task_board and task_read: one circle, its members, a big project. */
export interface Marketplace {
  owner: Owner;
  circleId: string;
  projectId: string;
  members: string[];
  tokens: string[];
}

let marketplace: Promise<Marketplace> | null = null;

export function getMarketplace(ctx: BenchContext): Promise<Marketplace> {
  marketplace ??= timed('seeding the marketplace (members, a project of open tasks)', async () => {
    const { url } = ctx.service;
    const s = ctx.opts.sizes;
    const owner = await registerOwner(url, 'bench_owner');
    const circleId = await createCircle(url, owner, 'Bench circle');
    const projectId = await createProject(url, owner, circleId, 'Bench project');
    const members = await seedMembers(ctx.pool, circleId, 'bench_m', s.connections * s.claimUsersPerConnection);
    await seedTasks(ctx.pool, circleId, projectId, s.claimTasks);
    await ctx.pool.query('VACUUM ANALYZE users, memberships');
    const tokens = members.map((id) => mintAccessToken(id));
    return { owner, circleId, projectId, members, tokens };
  });
  return marketplace;
}

/**
 * One HTTP measurement: `warmupSeconds` of unmeasured load, then `seconds` measured, with the CPU
 * each process used per request (the given ones, the bench database's backends, Redis, autocannon).
 */
export async function measureHttp(
  ctx: BenchContext,
  load: HttpLoad & { processes: Record<string, number[]>; afterWarmup?: () => Promise<unknown> },
) {
  const warm = await httpLoad({ ...load, seconds: ctx.opts.sizes.warmupSeconds, label: `${load.label} warm-up` });
  await load.afterWarmup?.();
  const meter = await startCpuMeter(ctx.pool, ctx.service.redisUrl, load.processes);
  const run: LoadResult = await httpLoad(load);
  return { ...run, warmOk: warm.ok, cpu: describeCpu(await meter(), run.ok) };
}

/** The service's processes, for measureHttp. */
export const serviceProcesses = (ctx: BenchContext) => ({
  api: [ctx.service.api.pid],
  worker: [ctx.service.worker.pid],
});

/**
 * The HTTP floor: the endpoint's statements behind a bare Fastify route in its own process, under
 * the same load (same connections, requests and headers) as the service.
 */
export async function bareRouteLoad(
  ctx: BenchContext,
  label: string,
  seconds: number,
  steps: Statement[],
  rotations: Record<string, string[]>,
  next: HttpLoad['next'],
  afterWarmup?: () => Promise<unknown>,
) {
  // The pool size the service itself resolved from its environment.
  const poolSize = loadConfig(ctx.service.env).databasePoolSize;
  const route = await startBareRoute({ databaseUrl: ctx.databaseUrl, poolSize, steps, rotations });
  try {
    const s = ctx.opts.sizes;
    const toRoute = () => ({ ...next(), path: route.path });
    const run = await measureHttp(ctx, {
      url: route.url,
      connections: s.connections,
      seconds,
      label,
      next: toRoute,
      processes: { 'bare route': [route.pid] },
      afterWarmup,
    });
    if (Object.keys(run.failures).length)
      ctx.failures.push(`${label}: failed requests ${JSON.stringify(run.failures)}`);
    return run;
  } finally {
    await route.stop();
  }
}

/** The service against the bare route: how much of the gap to the SQL straight is HTTP itself. */
export function bareRouteResult(
  name: string,
  serviceRps: number,
  straightRps: number,
  bare: Awaited<ReturnType<typeof measureHttp>>,
  runs: { rps: number }[],
): Scenario {
  return {
    name: `${name}_vs_bare_route`,
    value: serviceRps,
    unit: 'req/s',
    limit: bare.rps,
    ratio: serviceRps / bare.rps,
    target: 'none (reference)',
    met: null,
    notes:
      `${rounds(runs)}the same SQL behind a bare Fastify route ${fmt(bare.rps)}/s, p50 ${ms(bare.p50)}, p99 ${ms(bare.p99)} (${bare.cpu}); ` +
      `the bare route reaches ${(bare.rps / straightRps).toFixed(2)} of the SQL straight`,
  };
}

/**
 * Refreshes the statistics of the tables a claim rush grows, as autovacuum's analyze would (the
 * bench's Postgres may run with autovacuum off). Run after each claim_next warm-up: connections
 * that prepared the claim statement while the reset had left `claims` empty may otherwise keep a
 * generic plan that scans `claims` sequentially, which grows slower with every claim (see
 * docs/BENCHMARKS.md). ANALYZE makes every connection plan again.
 */
export const refreshStatistics = (ctx: BenchContext) => ctx.pool.query('ANALYZE claims, tasks');

/**
 * Frees every claim on the project, as if none had been made, so each measurement starts alike.
 * A measurement's last requests may still be in the service when it ends. Every claim locks its
 * task row before it inserts, so the reset locks the project's tasks first, in one transaction: a
 * claim in flight either committed before (its row is deleted with the rest) or waits and then
 * claims against the zeroed count. Deleting and zeroing as two loose statements let such a claim
 * land between them, leaving a live claim on a task that counts none.
 */
export async function resetClaims(ctx: BenchContext, projectId: string): Promise<void> {
  const client = await ctx.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT id FROM tasks WHERE project_id = $1 ORDER BY id FOR UPDATE', [projectId]);
    await client.query('DELETE FROM claims WHERE project_id = $1', [projectId]);
    await client.query('UPDATE tasks SET live_claims = 0 WHERE project_id = $1 AND live_claims <> 0', [projectId]);
    // The circle's daily rollups counted the deleted claims as activity, and rows are never deleted
    // in the product. Marking the watermark unfolded (it waits for a fold in progress) makes the
    // next fold rebuild them from the rows left; health reads the raw rows meanwhile.
    const circle = 'SELECT circle_id FROM projects WHERE id = $1';
    await client.query(
      `UPDATE circle_rollup_watermarks SET folded_through = NULL, timezone = NULL WHERE circle_id = (${circle})`,
      [projectId],
    );
    await client.query(`DELETE FROM circle_member_days WHERE circle_id = (${circle})`, [projectId]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
  await ctx.pool.query('VACUUM ANALYZE tasks, claims');
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const ms = (n: number) => `${n.toFixed(n < 10 ? 2 : 1)} ms`;

export const failureText = (f: Record<string, number>) => {
  const entries = Object.entries(f);
  return entries.length ? `; FAILED requests: ${entries.map(([k, v]) => `${k} x${v}`).join(', ')}` : '';
};

/** The run with the highest throughput: noise from other processes only ever slows a run down. */
export const best = <T extends { rps: number }>(runs: T[]): T => runs.reduce((a, b) => (b.rps > a.rps ? b : a));

/** "rounds: HTTP 612, 655; SQL 1,100, 1,180 req/s; " when there was more than one. */
export function rounds(...sides: { rps: number }[][]): string {
  if (sides[0]!.length < 2) return '';
  const list = (runs: { rps: number }[]) => runs.map((r) => Math.round(r.rps).toLocaleString('en-US')).join(', ');
  const text = sides.length === 2 ? `HTTP ${list(sides[0]!)}; SQL ${list(sides[1]!)}` : list(sides[0]!);
  return `rounds: ${text} req/s (best kept); `;
}
