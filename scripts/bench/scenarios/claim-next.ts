import { findUserById } from '../../../src/accounts/accounts.repository.js';
import { claimNextTask } from '../../../src/claims/claims.repository.js';
import { checkInvariants } from '../../../src/audit/invariants.js';
import { createDb } from '../../../src/infra/postgres.js';
import { captureDb } from '../lib/database.js';
import { httpLoad } from '../lib/http-load.js';
import { cpuMeter, describeCpu } from '../lib/processes.js';
import { fmt, step } from '../lib/report.js';
import { sqlLoad } from '../lib/sql-load.js';
import { clearRedis } from '../lib/service.js';
import { failureText, getMarketplace, ms, resetClaims, type BenchContext } from './context.js';

// The minimal claim pgbench would run: one UPDATE taking the best free task, skipping locked rows.
export const MINIMAL_CLAIM = `
  UPDATE tasks SET live_claims = live_claims + 1
  WHERE id = (SELECT id FROM tasks
              WHERE project_id = $1 AND status = 'open' AND is_leaf AND blocking_deps = 0 AND live_claims < slots
              ORDER BY priority DESC, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING id`;

/**
 * POST /v1/projects/:id/claims/next by many members at once, against (a) the statements the
 * endpoint runs, replayed straight through pg at the same concurrency, and (b) the minimal claim.
 * Requests rotate over connections x claimUsersPerConnection members, so no two requests in
 * flight share a member and each member holds a few live claims, as members do.
 */
export async function claimNext(ctx: BenchContext): Promise<void> {
  const m = await getMarketplace(ctx);
  const s = ctx.opts.sizes;
  const cap = ctx.maxLiveClaims;
  const label = 'claim_next';

  // The endpoint's SQL, built by the service's own repository functions (no skills in the body:
  // the service reads the member's profile skills, then claims).
  const capture = captureDb();
  await findUserById(capture.db, '@user');
  await claimNextTask(capture.db, m.projectId, '@user', [], cap, true);
  const steps = capture.queries;

  await resetClaims(ctx, m.projectId);
  let i = 0;
  const path = `/v1/projects/${m.projectId}/claims/next`;
  const next = () => ({ method: 'POST' as const, path, token: m.tokens[i++ % m.tokens.length]! });
  step(`${label}: HTTP, ${s.connections} connections over ${fmt(m.tokens.length)} members, ${s.warmupSeconds} s warm-up + ${s.claimSeconds} s`);
  await httpLoad({ url: ctx.service.url, connections: s.connections, seconds: s.warmupSeconds, label: `${label} warm-up`, next });
  const meter = cpuMeter({ api: ctx.service.api.pid });
  const http = await httpLoad({ url: ctx.service.url, connections: s.connections, seconds: s.claimSeconds, label: `${label} HTTP`, next });
  const httpCpu = describeCpu(meter());

  // Every 201 is one claim row, and no task holds more live claims than slots.
  const { rows: [counts] } = await ctx.pool.query<{ claims: number; over: number; max_member: number }>(`
    SELECT (SELECT count(*)::int FROM claims WHERE project_id = $1) AS claims,
           (SELECT count(*)::int FROM tasks WHERE project_id = $1 AND live_claims > slots) AS over,
           (SELECT coalesce(max(n), 0)::int FROM (SELECT count(*) AS n FROM claims WHERE project_id = $1 AND status = 'active' GROUP BY user_id) x) AS max_member`, [m.projectId]);
  const db = createDb(ctx.databaseUrl, 2);
  const broken = (await checkInvariants(db)).filter((r) => r.violations > 0).map((r) => r.name);
  await db.destroy();
  if (counts!.over > 0) ctx.failures.push(`${label}: ${counts!.over} tasks with more live claims than slots`);
  if (broken.length) ctx.failures.push(`${label}: invariants violated after the HTTP run: ${broken.join(', ')}`);
  step(`${label}: ${fmt(counts!.claims)} claims, ${counts!.over} tasks over their slots, at most ${counts!.max_member} live claims per member (cap ${cap}), invariants ${broken.length ? `VIOLATED: ${broken.join(', ')}` : 'hold'}`);
  await clearRedis(ctx.service.redisUrl, `${ctx.opts.queuePrefix}:claim-expiry`);

  await resetClaims(ctx, m.projectId);
  step(`${label}: the endpoint's SQL straight through pg (${steps.length} statements per claim), ${s.connections} connections`);
  const straight = await sqlLoad({
    databaseUrl: ctx.databaseUrl, connections: s.connections, warmupSeconds: s.warmupSeconds, seconds: s.claimSeconds,
    steps, rotations: { '@user': m.members },
  }, `${label} SQL straight`);

  await resetClaims(ctx, m.projectId);
  step(`${label}: the minimal SKIP LOCKED claim, ${s.connections} connections`);
  const minimal = await sqlLoad({
    databaseUrl: ctx.databaseUrl, connections: s.connections, warmupSeconds: s.warmupSeconds, seconds: s.claimSeconds,
    steps: [{ text: MINIMAL_CLAIM, values: [m.projectId] }], rotations: {},
  }, `${label} minimal claim`);
  await resetClaims(ctx, m.projectId);

  const exhausted = (n: number) => (n ? `; ${fmt(n)} found nothing left to claim` : '');
  const httpNote = `HTTP ${fmt(http.rps)} claims/s, p50 ${ms(http.p50)}, p99 ${ms(http.p99)} (${httpCpu})${failureText(http.failures)}`;
  ctx.results.push({
    name: 'claim_next', value: http.rps, unit: 'req/s', limit: straight.rps, ratio: http.rps / straight.rps, target: '>= 0.8',
    met: http.rps / straight.rps >= 0.8,
    notes: `${httpNote}; endpoint SQL straight ${fmt(straight.rps)}/s, p50 ${ms(straight.p50)}, p99 ${ms(straight.p99)} (${straight.cpu})${exhausted(straight.empty)}`,
  });
  ctx.results.push({
    name: 'claim_next_vs_minimal', value: http.rps, unit: 'req/s', limit: minimal.rps, ratio: http.rps / minimal.rps, target: '>= 0.5',
    met: http.rps / minimal.rps >= 0.5,
    notes: `minimal one-statement claim ${fmt(minimal.rps)}/s, p50 ${ms(minimal.p50)}, p99 ${ms(minimal.p99)} (${minimal.cpu})${exhausted(minimal.empty)}`,
  });
  if (Object.keys(http.failures).length) ctx.failures.push(`${label}: non-2xx responses ${JSON.stringify(http.failures)}`);
}
