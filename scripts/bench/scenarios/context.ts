import type pg from 'pg';
import type { Options } from '../lib/options.js';
import type { Service } from '../lib/service.js';
import type { Scenario } from '../lib/report.js';
import { createCircle, createProject, registerOwner, seedMembers, seedTasks, type Owner } from '../lib/seed.js';
import { mintAccessToken } from '../lib/service.js';
import { timed } from '../lib/report.js';

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

/** Frees every claim on the project, as if none had been made, so each measurement starts alike. */
export async function resetClaims(ctx: BenchContext, projectId: string): Promise<void> {
  await ctx.pool.query('DELETE FROM claims WHERE project_id = $1', [projectId]);
  await ctx.pool.query('UPDATE tasks SET live_claims = 0 WHERE project_id = $1 AND live_claims <> 0', [projectId]);
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
