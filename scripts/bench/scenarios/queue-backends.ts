import { checkInvariants } from '../../../src/audit/invariants.js';
import { createDb } from '../../../src/infra/postgres.js';
import { fmt, progress, step, timed } from '../lib/report.js';
import { createCircle, registerOwner, seedMembers, seedTasks } from '../lib/seed.js';
import { api, mintAccessToken, startService, stopService } from '../lib/service.js';
import {
  failureText,
  getMarketplace,
  measureHttp,
  ms,
  refreshStatistics,
  resetClaims,
  serviceProcesses,
  type BenchContext,
} from './context.js';
import { settleOn } from './settle.js';

// The queues' own figures on each backend: how late leases expire (lease_expiry on the service as
// started, with its queues in Redis), and the service with no Redis at all (no_redis: queues in
// Postgres, rate limits counted per process): claims/next, lease expiry and a settlement again.

/** How long the leases of lease_expiry run: short, so the claim rush and the expiries overlap. */
const LEASE_SECONDS = 2;

/** Claims per member in lease_expiry: well under the cap, as members hold a few. */
const CLAIMS_PER_MEMBER = 5;

interface ExpiryFigures {
  claims: number;
  claimSeconds: number;
  p50: number;
  p99: number;
  max: number;
  /** From the last claim's answer until no lease of the project was active. */
  drainedMs: number;
}

/**
 * A rush of claims on leases of LEASE_SECONDS (50 connections through POST claims/next, each
 * claim enqueueing the expiry job of its deadline's second once per API process), then the wait
 * until every lease has expired. The lag of a lease is its `claim.expired` event's time minus its
 * deadline: the job of a second is due at the end of that second, so up to 1 s of it is by design;
 * the rest is the queue's delay and the expiring itself, under the claim load.
 */
async function measureLeaseExpiry(ctx: BenchContext, label: string, tag: string): Promise<ExpiryFigures> {
  const s = ctx.opts.sizes;
  const { url } = ctx.service;
  const total = s.leaseClaims;
  const setup = await timed(`${label}: seeding ${fmt(total)} tasks and their members`, async () => {
    const owner = await registerOwner(url, `bench_lease${tag}`);
    const circleId = await createCircle(url, owner, 'Bench lease circle');
    const { id: projectId } = await api<{ id: string }>(url, 'POST', `/v1/circles/${circleId}/projects`, owner.token, {
      title: 'Bench leases',
      status: 'open',
      leaseSeconds: LEASE_SECONDS,
    });
    const members = await seedMembers(ctx.pool, circleId, `bench_l${tag}`, Math.ceil(total / CLAIMS_PER_MEMBER));
    await seedTasks(ctx.pool, circleId, projectId, total);
    await ctx.pool.query('VACUUM ANALYZE users, memberships');
    return { projectId, tokens: members.map((id) => mintAccessToken(id)) };
  });

  step(`${label}: ${fmt(total)} claims on ${LEASE_SECONDS} s leases, ${s.connections} connections`);
  let issued = 0;
  const failures: Record<string, number> = {};
  const path = `/v1/projects/${setup.projectId}/claims/next`;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: s.connections }, async () => {
      while (issued < total) {
        const token = setup.tokens[issued++ % setup.tokens.length]!;
        const res = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
        await res.arrayBuffer();
        if (res.status !== 201) failures[res.status] = (failures[res.status] ?? 0) + 1;
        if (issued % 500 === 0) progress(`${label}: ${fmt(issued)}/${fmt(total)} claims`);
      }
    }),
  );
  const claimSeconds = (performance.now() - t0) / 1000;
  progress(`${label}: ${fmt(total)} claims in ${claimSeconds.toFixed(1)} s`, true);
  if (Object.keys(failures).length)
    ctx.failures.push(`${label}: claims answered other than 201${failureText(failures)}`);

  const t1 = performance.now();
  // Sweeps repair lost jobs every SWEEP_INTERVAL_SECONDS (30 s): past that, something is wrong.
  const deadline = t1 + (LEASE_SECONDS + 60) * 1000;
  for (;;) {
    const { rows } = await ctx.pool.query<{ active: number }>(
      "SELECT count(*)::int AS active FROM claims WHERE project_id = $1 AND status = 'active'",
      [setup.projectId],
    );
    progress(`${label}: ${fmt(rows[0]!.active)} leases still active`);
    if (rows[0]!.active === 0) break;
    if (performance.now() > deadline) {
      ctx.failures.push(`${label}: ${rows[0]!.active} leases still active ${LEASE_SECONDS + 60} s after the rush`);
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const drainedMs = performance.now() - t1;
  progress(`${label}: every lease expired ${ms(drainedMs)} after the last claim`, true);

  const {
    rows: [lag],
  } = await ctx.pool.query<{ claims: number; expired: number; p50: number; p99: number; max: number }>(
    `
    SELECT count(*)::int AS claims, count(e.id)::int AS expired,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) AS p99, max(lag) AS max
    FROM claims c
    LEFT JOIN events e ON e.subject_id = c.id AND e.type = 'claim.expired'
    CROSS JOIN LATERAL (SELECT extract(epoch FROM e.created_at - c.expires_at)::float8 * 1000 AS lag) l
    WHERE c.project_id = $1`,
    [setup.projectId],
  );
  const figures = lag!;
  if (figures.expired !== figures.claims)
    ctx.failures.push(`${label}: ${figures.claims} claims but ${figures.expired} claim.expired events`);
  const db = createDb(ctx.databaseUrl, 2);
  try {
    const broken = (await checkInvariants(db)).filter((r) => r.violations > 0).map((r) => r.name);
    if (broken.length) ctx.failures.push(`${label}: invariants violated after the expiries: ${broken.join(', ')}`);
  } finally {
    await db.destroy();
  }
  return { claims: figures.claims, claimSeconds, p50: figures.p50, p99: figures.p99, max: figures.max, drainedMs };
}

function expiryNotes(f: ExpiryFigures, backend: string): string {
  return (
    `${fmt(f.claims)} leases of ${LEASE_SECONDS} s claimed at ${fmt(f.claims / f.claimSeconds)}/s over ${f.claimSeconds.toFixed(1)} s, queues in ${backend}; ` +
    `expired after their deadline: p50 ${ms(f.p50)}, p99 ${ms(f.p99)}, max ${ms(f.max)}; the last ${ms(f.drainedMs)} after the rush ended`
  );
}

/** Lease expiry on the service as the run started it (queues in Redis). */
export async function leaseExpiry(ctx: BenchContext): Promise<void> {
  const f = await measureLeaseExpiry(ctx, 'lease_expiry', '_r');
  ctx.results.push({
    name: 'lease_expiry',
    value: f.p99,
    unit: 'ms',
    limit: 1000,
    ratio: f.p99 / 1000,
    target: 'none (reference)',
    met: null,
    notes: `p99 lag against the 1 s the expiry job of a second waits by design; ${expiryNotes(f, 'Redis')}`,
  });
}

/**
 * claim_next's HTTP measurement (one round) on the service as it runs now, with its checks: claim
 * rows match the 201s, no task over its slots.
 */
async function claimNextHttp(ctx: BenchContext, label: string) {
  const m = await getMarketplace(ctx);
  const s = ctx.opts.sizes;
  let i = 0;
  const path = `/v1/projects/${m.projectId}/claims/next`;
  await resetClaims(ctx, m.projectId);
  step(`${label}: HTTP, ${s.connections} connections over ${fmt(m.tokens.length)} members`);
  const http = await measureHttp(ctx, {
    url: ctx.service.url,
    connections: s.connections,
    seconds: s.claimSeconds,
    label: `${label} HTTP`,
    next: () => ({ method: 'POST' as const, path, token: m.tokens[i++ % m.tokens.length]! }),
    processes: serviceProcesses(ctx),
    afterWarmup: () => refreshStatistics(ctx),
  });
  const {
    rows: [counts],
  } = await ctx.pool.query<{ claims: number; over: number }>(
    `SELECT (SELECT count(*)::int FROM claims WHERE project_id = $1) AS claims,
            (SELECT count(*)::int FROM tasks WHERE project_id = $1 AND live_claims > slots) AS over`,
    [m.projectId],
  );
  const answered = http.warmOk + http.ok;
  if (counts!.over > 0) ctx.failures.push(`${label}: ${counts!.over} tasks with more live claims than slots`);
  if (counts!.claims < answered || counts!.claims > answered + 2 * s.connections)
    ctx.failures.push(`${label}: ${answered} claims answered 201 but ${counts!.claims} claim rows`);
  if (Object.keys(http.failures).length)
    ctx.failures.push(`${label}: non-2xx responses ${JSON.stringify(http.failures)}`);
  await resetClaims(ctx, m.projectId);
  return http;
}

const httpNote = (http: Awaited<ReturnType<typeof claimNextHttp>>) =>
  `${fmt(http.rps)} claims/s, p50 ${ms(http.p50)}, p99 ${ms(http.p99)} (${http.cpu})${failureText(http.failures)}`;

/**
 * The service restarted with no Redis (queues in Postgres, rate limits per process), then
 * claims/next, lease expiry and a settlement measured on it. Runs last: the rest of the run, and
 * its clean-up, see this service.
 */
export async function noRedis(ctx: BenchContext): Promise<void> {
  // The comparison for claim_next_no_redis, measured on the database as it is now: the scenarios
  // before this one grew it (claim_next's own figure is from a fresher one).
  const withRedis = await timed('claim_next with Redis, for claim_next_no_redis', () =>
    claimNextHttp(ctx, 'claim_next_no_redis (with Redis first)'),
  );
  await stopService(ctx.service);
  ctx.service = await timed('starting the service with no Redis (ROLE=api and ROLE=worker processes)', () =>
    startService({
      databaseUrl: ctx.databaseUrl,
      queuePrefix: ctx.opts.queuePrefix,
      maxLiveClaims: ctx.maxLiveClaims,
      cpuProfileDir: ctx.opts.cpuProfileDir,
      queueBackend: 'postgres',
    }),
  );
  const parts: [string, () => Promise<void>][] = [
    [
      'claim_next_no_redis',
      async () => {
        const http = await claimNextHttp(ctx, 'claim_next_no_redis');
        ctx.results.push({
          name: 'claim_next_no_redis',
          value: http.rps,
          unit: 'req/s',
          limit: withRedis.rps,
          ratio: http.rps / withRedis.rps,
          target: 'none (reference)',
          met: null,
          notes:
            `rate limits counted in the API process, lease-expiry jobs in Postgres: HTTP ${httpNote(http)}; ` +
            `the same measurement with Redis just before, on the same data: ${httpNote(withRedis)}`,
        });
      },
    ],
    [
      'lease_expiry_no_redis',
      async () => {
        const f = await measureLeaseExpiry(ctx, 'lease_expiry_no_redis', '_p');
        const withRedis = ctx.results.find((r) => r.name === 'lease_expiry');
        ctx.results.push({
          name: 'lease_expiry_no_redis',
          value: f.p99,
          unit: 'ms',
          limit: withRedis?.value ?? 1000,
          ratio: f.p99 / (withRedis?.value ?? 1000),
          target: 'none (reference)',
          met: null,
          notes: `p99 lag against lease_expiry's p99 with Redis${withRedis ? '' : ' (not run: limit is the 1 s by design)'}; ${expiryNotes(f, 'Postgres')}`,
        });
      },
    ],
    ['settle_no_redis', () => settleOn(ctx, { name: 'settle_no_redis', tag: '_p' })],
  ];
  for (const [name, part] of parts) {
    try {
      await timed(name, part);
    } catch (err) {
      // One broken part must not hide the others' figures.
      ctx.failures.push(`${name} did not complete: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      step(`${name} FAILED: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
