import { claimNextTask } from '../../../src/claims/claims.repository.js';
import { claimLimits } from '../../../src/claims/claims.service.js';
import { loadConfig } from '../../../src/config.js';
import { checkInvariants } from '../../../src/audit/invariants.js';
import { createDb } from '../../../src/infra/postgres.js';
import { captureDb } from '../lib/database.js';
import { fmt, step } from '../lib/report.js';
import { sqlLoad, type SqlLoadResult } from '../lib/sql-load.js';
import { clearRedis } from '../lib/service.js';
import {
  bareRouteLoad,
  bareRouteResult,
  best,
  failureText,
  getMarketplace,
  measureHttp,
  ms,
  refreshStatistics,
  resetClaims,
  rounds,
  serviceProcesses,
  type BenchContext,
} from './context.js';

// The minimal claim pgbench would run: one UPDATE taking the best free task, skipping locked rows.
export const MINIMAL_CLAIM = `
  UPDATE tasks SET live_claims = live_claims + 1
  WHERE id = (SELECT id FROM tasks
              WHERE project_id = $1 AND status = 'open' AND is_leaf AND blocking_deps = 0 AND blocked_ancestors = 0 AND live_claims < slots
              ORDER BY priority DESC, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING id`;

/**
 * POST /v1/projects/:id/claims/next by many members at once, against (a) the statements the
 * endpoint runs, replayed straight through pg at the same concurrency, (b) the minimal claim, and
 * (c) the endpoint's statement behind a bare Fastify route (the HTTP floor, for reference).
 * Requests rotate over connections x claimUsersPerConnection members, so no two requests in
 * flight share a member and each member holds a few live claims, as members do.
 */
export async function claimNext(ctx: BenchContext): Promise<void> {
  const m = await getMarketplace(ctx);
  const s = ctx.opts.sizes;
  // The limits the service resolved from the environment it was started with.
  const limits = claimLimits(loadConfig(ctx.service.env));
  const cap = limits.memberCap;
  const label = 'claim_next';

  // The endpoint's SQL, built by the service's own repository function (no skills in the body: the
  // statement reads the member's profile skills itself), prepared as the service prepares it.
  const capture = captureDb();
  await claimNextTask(capture.db, m.projectId, '@user', null, limits, { skipLocked: true });
  const steps = capture.queries;

  let i = 0;
  const path = `/v1/projects/${m.projectId}/claims/next`;
  const next = () => ({ method: 'POST' as const, path, token: m.tokens[i++ % m.tokens.length]! });
  const cpuOf = { pool: ctx.pool, redisUrl: ctx.service.redisUrl };
  const afterWarmup = () => refreshStatistics(ctx);

  const viaHttp = async (round: string) => {
    await resetClaims(ctx, m.projectId);
    step(
      `${label}${round}: HTTP, ${s.connections} connections over ${fmt(m.tokens.length)} members, ${s.warmupSeconds} s warm-up + ${s.claimSeconds} s`,
    );
    const http = await measureHttp(ctx, {
      url: ctx.service.url,
      connections: s.connections,
      seconds: s.claimSeconds,
      label: `${label} HTTP`,
      next,
      processes: serviceProcesses(ctx),
      afterWarmup,
    });
    // Every 201 is one claim row, no task holds more live claims than slots, every invariant holds.
    const {
      rows: [counts],
    } = await ctx.pool.query<{ claims: number; over: number; max_member: number }>(
      `
      SELECT (SELECT count(*)::int FROM claims WHERE project_id = $1) AS claims,
             (SELECT count(*)::int FROM tasks WHERE project_id = $1 AND live_claims > slots) AS over,
             (SELECT coalesce(max(n), 0)::int FROM (SELECT count(*) AS n FROM claims WHERE project_id = $1 AND status = 'active' GROUP BY user_id) x) AS max_member`,
      [m.projectId],
    );
    const db = createDb(ctx.databaseUrl, 2);
    const broken = (await checkInvariants(db)).filter((r) => r.violations > 0).map((r) => r.name);
    await db.destroy();
    const c = counts!;
    if (c.over > 0) ctx.failures.push(`${label}: ${c.over} tasks with more live claims than slots`);
    // autocannon stops counting when the time is up: requests still in flight then (one per
    // connection, per load run) complete on the server unseen.
    const answered = http.warmOk + http.ok;
    if (c.claims < answered || c.claims > answered + 2 * s.connections)
      ctx.failures.push(`${label}: ${answered} claims answered 201 but ${c.claims} claim rows`);
    if (broken.length) ctx.failures.push(`${label}: invariants violated after the HTTP run: ${broken.join(', ')}`);
    if (Object.keys(http.failures).length)
      ctx.failures.push(`${label}: non-2xx responses ${JSON.stringify(http.failures)}`);
    step(
      `${label}: ${fmt(c.claims)} claim rows for ${fmt(answered)} answers 201 (plus up to ${2 * s.connections} in flight at the stop), ${c.over} tasks over their slots, at most ${c.max_member} live claims per member (cap ${cap}), invariants ${broken.length ? `VIOLATED: ${broken.join(', ')}` : 'hold'}`,
    );
    await clearRedis(ctx.service.redisUrl, `${ctx.opts.queuePrefix}:claim-expiry`);
    return http;
  };
  const straightSql = async (round: string) => {
    await resetClaims(ctx, m.projectId);
    step(
      `${label}${round}: the endpoint's SQL straight through pg (${steps.length} statements per claim), ${s.connections} connections`,
    );
    return sqlLoad(
      {
        databaseUrl: ctx.databaseUrl,
        connections: s.connections,
        warmupSeconds: s.warmupSeconds,
        seconds: s.claimSeconds,
        steps,
        rotations: { '@user': m.members },
      },
      `${label} SQL straight`,
      cpuOf,
      afterWarmup,
    );
  };
  const minimalSql = async (round: string) => {
    await resetClaims(ctx, m.projectId);
    step(`${label}${round}: the minimal SKIP LOCKED claim, ${s.connections} connections`);
    return sqlLoad(
      {
        databaseUrl: ctx.databaseUrl,
        connections: s.connections,
        warmupSeconds: s.warmupSeconds,
        seconds: s.claimSeconds,
        steps: [{ text: MINIMAL_CLAIM, values: [m.projectId] }],
        rotations: {},
      },
      `${label} minimal claim`,
      cpuOf,
      afterWarmup,
    );
  };

  const bareRoute = async (round: string) => {
    await resetClaims(ctx, m.projectId);
    step(`${label}${round}: the endpoint's SQL behind a bare Fastify route, ${s.connections} connections`);
    return bareRouteLoad(ctx, `${label} bare route`, s.claimSeconds, steps, { '@user': m.members }, next, afterWarmup);
  };

  // Rounds alternate the four, so a neighbour's burst of load hits one round, not one side;
  // each side keeps its best round.
  const runs = {
    http: [] as Awaited<ReturnType<typeof viaHttp>>[],
    straight: [] as SqlLoadResult[],
    minimal: [] as SqlLoadResult[],
    bare: [] as Awaited<ReturnType<typeof bareRoute>>[],
  };
  for (let r = 0; r < s.rounds; r++) {
    const round = s.rounds > 1 ? ` (round ${r + 1}/${s.rounds})` : '';
    runs.http.push(await viaHttp(round));
    runs.straight.push(await straightSql(round));
    runs.minimal.push(await minimalSql(round));
    runs.bare.push(await bareRoute(round));
  }
  await resetClaims(ctx, m.projectId);
  const http = best(runs.http);
  const straight = best(runs.straight);
  const minimal = best(runs.minimal);

  const exhausted = (n: number) => (n ? `; ${fmt(n)} found nothing left to claim` : '');
  const httpNote = `${rounds(runs.http, runs.straight)}HTTP ${fmt(http.rps)} claims/s, p50 ${ms(http.p50)}, p99 ${ms(http.p99)} (${http.cpu})${failureText(http.failures)}`;
  ctx.results.push({
    name: 'claim_next',
    value: http.rps,
    unit: 'req/s',
    limit: straight.rps,
    ratio: http.rps / straight.rps,
    target: '>= 0.8',
    met: http.rps / straight.rps >= 0.8,
    notes: `${httpNote}; endpoint SQL straight ${fmt(straight.rps)}/s, p50 ${ms(straight.p50)}, p99 ${ms(straight.p99)} (${straight.cpu})${exhausted(straight.empty)}`,
  });
  ctx.results.push({
    name: 'claim_next_vs_minimal',
    value: http.rps,
    unit: 'req/s',
    limit: minimal.rps,
    ratio: http.rps / minimal.rps,
    target: '>= 0.5',
    met: http.rps / minimal.rps >= 0.5,
    notes: `${rounds(runs.minimal)}minimal one-statement claim ${fmt(minimal.rps)}/s, p50 ${ms(minimal.p50)}, p99 ${ms(minimal.p99)} (${minimal.cpu})${exhausted(minimal.empty)}`,
  });
  ctx.results.push(bareRouteResult('claim_next', http.rps, straight.rps, best(runs.bare), runs.bare));
}
