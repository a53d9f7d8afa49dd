import { findMembership } from '../../../src/circles/circles.repository.js';
import { foldCircleRollups } from '../../../src/circle-health/rollup-fold.js';
import { createDb } from '../../../src/infra/postgres.js';
import { boardPage, nowMicros } from '../../../src/circle-leaderboard/circle-leaderboard.repository.js';
import { currentSnapshot } from '../../../src/infra/snapshots.js';
import { api, mintAccessToken } from '../lib/service.js';
import { captureDb } from '../lib/database.js';
import { fmt, progress, step, timed } from '../lib/report.js';
import { createCircle, createProject, registerOwner, seedMembers, seedTasks, type Owner } from '../lib/seed.js';
import { startCpuMeter } from '../lib/cpu.js';
import { describeCpu } from '../lib/processes.js';
import { compare } from './reads.js';
import { median, ms, serviceProcesses, type BenchContext } from './context.js';

// circle_leaderboard and circle_health on one big circle: `circleMembers` members and
// `circleRows` contribution rows over the last 60 days (check-ins, and one in 20 an owner
// adjustment, one in 7 of those negative), concentrated the way real circles are (a fifth of the
// rows go to the first 1% of members), plus claims and first submissions over 90 days for the
// activity figures. The daily rollups the health report reads are folded as the rows arrive,
// by the service's own fold (the worker's sweep would do the same a little later).

interface BigCircle {
  owner: Owner;
  circleId: string;
  members: string[];
  tokens: string[];
}

let seeded: Promise<BigCircle> | null = null;

const CLAIM_TASKS = 2_000;
const LEADERBOARD_CONNECTIONS = 4;

function bigCircle(ctx: BenchContext): Promise<BigCircle> {
  const s = ctx.opts.sizes;
  seeded ??= timed(
    `seeding a circle of ${fmt(s.circleMembers)} members, ${fmt(s.circleRows)} contributions, ${fmt(s.circleRows / 10)} claims`,
    async () => {
      const { url } = ctx.service;
      const owner = await registerOwner(url, 'bench_circle_owner');
      const circleId = await createCircle(url, owner, 'Bench activity circle');
      await api(url, 'PATCH', `/v1/circles/${circleId}`, owner.token, { timezone: 'Asia/Shanghai' });
      const projectId = await createProject(url, owner, circleId, 'Bench activity project');
      const members = await seedMembers(ctx.pool, circleId, 'bench_c', s.circleMembers);
      await ctx.pool.query('CREATE TABLE bench_circle_members (i int PRIMARY KEY, id uuid NOT NULL)');
      await ctx.pool.query(
        'INSERT INTO bench_circle_members SELECT i, id FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, i)',
        [members],
      );
      const db = createDb(ctx.databaseUrl, 1);
      let folded = 0;
      const fold = async (what: string) => {
        const t0 = performance.now();
        const result = await foldCircleRollups(db, circleId);
        folded += result.rows;
        progress(`${what}; rollups: ${fmt(folded)} rows folded (${fmt(result.rows)} in ${ms(performance.now() - t0)})`);
      };
      const n = members.length;
      const heavy = Math.max(1, Math.floor(n / 100));
      const chunk = 100_000;
      for (let start = 0; start < s.circleRows; start += chunk) {
        const end = Math.min(s.circleRows, start + chunk) - 1;
        await ctx.pool.query(
          `
          INSERT INTO contributions (circle_id, user_id, source, points, reason, created_by, created_at)
          SELECT $1::uuid, m.id,
                 'adjustment',
                 CASE WHEN g % 140 = 0 THEN -5 ELSE 1 + (g::bigint * 7919) % 50 END,
                 'bench seed',
                 $2::uuid,
                 now() - ((g::bigint * 104729) % 5184000) * interval '1 second'
          FROM generate_series($3::int, $4::int) g
          JOIN bench_circle_members m ON m.i = CASE WHEN g % 5 = 0 THEN 1 + (g / 5) % $6::int ELSE 1 + (g::bigint * 7919) % $5::int END`,
          [circleId, owner.id, start, end, n, heavy],
        );
        await fold(`contributions: ${fmt(end + 1)}/${fmt(s.circleRows)}`);
      }
      progress(`contributions: ${fmt(s.circleRows)} seeded`, true);
      await seedTasks(ctx.pool, circleId, projectId, CLAIM_TASKS);
      const claims = Math.floor(s.circleRows / 10);
      for (let start = 0; start < claims; start += chunk) {
        const end = Math.min(claims, start + chunk) - 1;
        // Released claims over 90 days; every other one handed in 1 to 48 hours after it was made.
        await ctx.pool.query(
          `
          WITH t AS (SELECT id, row_number() OVER (ORDER BY seq) AS k FROM tasks WHERE project_id = $2::uuid),
          c AS (
            INSERT INTO claims (circle_id, project_id, task_id, user_id, status, expires_at, lease_started_at, created_at, updated_at)
            SELECT $1::uuid, $2::uuid, t.id, m.id, 'released', at + interval '1 day', at, at, at
            FROM (SELECT g, now() - ((g::bigint * 15485863) % 7776000) * interval '1 second' AS at
                  FROM generate_series($3::int, $4::int) g) x
            JOIN bench_circle_members m ON m.i = 1 + (x.g::bigint * 31) % $5::int
            JOIN t ON t.k = 1 + x.g % $6::int
            RETURNING id, user_id, created_at
          )
          INSERT INTO submissions (circle_id, claim_id, user_id, revision, content, review_due_at, created_at)
          SELECT $1::uuid, id, user_id, 1, 'bench work', created_at + interval '3 days',
                 least(now(), created_at + (1 + (abs(hashtext(id::text)) % 48)) * interval '1 hour')
          FROM c WHERE abs(hashtext(id::text)) % 2 = 0`,
          [circleId, projectId, start, end, n, CLAIM_TASKS],
        );
        await fold(`claims: ${fmt(end + 1)}/${fmt(claims)}`);
      }
      progress(`claims: ${fmt(claims)} seeded; rollups: ${fmt(folded)} rows folded`, true);
      await db.destroy();
      await ctx.pool.query(
        'VACUUM ANALYZE contributions, claims, submissions, users, memberships, circle_member_days, circle_rollup_watermarks',
      );
      const readers = members.slice(0, s.readUsers);
      return { owner, circleId, members, tokens: readers.map((id) => mintAccessToken(id)) };
    },
  );
  return seeded;
}

/**
 * GET /v1/circles/:id/leaderboard?window=30d, first page of 50, as members of the big circle,
 * against its statements straight through pg and behind a bare route.
 */
export async function circleLeaderboard(ctx: BenchContext): Promise<void> {
  const c = await bigCircle(ctx);
  const readers = Math.min(ctx.opts.sizes.readUsers, c.members.length);
  const { rows } = await ctx.pool.query<{ snapshot: string }>('SELECT pg_current_snapshot()::text AS snapshot');
  const snapshot = rows[0]!.snapshot;
  const capture = captureDb();
  // What the service runs per first page: the membership check, the snapshot and the clock, the board.
  await findMembership(capture.db, c.circleId, '@user');
  await currentSnapshot(capture.db);
  await nowMicros(capture.db);
  const now = Date.now() * 1000;
  await boardPage(
    capture.db,
    { circleId: c.circleId, sinceMicros: now - 30 * 86_400_000_000, asOfMicros: now, snapshot: '@snapshot' },
    { after: null, limit: 51, meId: null },
  );
  // Both sides read a warm cache.
  await ctx.pool.query('SELECT count(*), sum(points) FROM contributions WHERE circle_id = $1', [c.circleId]);
  // Each request aggregates the window's rows (about half the circle's): 50 connections would
  // queue every request past the measured seconds on this machine, so both sides use a few.
  const fewer = { ...ctx, opts: { ...ctx.opts, sizes: { ...ctx.opts.sizes, connections: LEADERBOARD_CONNECTIONS } } };
  await compare(
    fewer,
    {
      name: 'circle_leaderboard',
      target: 0.7,
      what: `the 30-day board of ${fmt(c.members.length)} members over ${fmt(ctx.opts.sizes.circleRows)} rows, 50 per page`,
      request: (i) => ({ path: `/v1/circles/${c.circleId}/leaderboard?window=30d&limit=50`, member: i % readers }),
      steps: capture.queries,
      rotations: { '@user': c.members.slice(0, readers), '@snapshot': [snapshot] },
    },
    c,
  );
}

/**
 * GET /v1/circles/:id/health?window=30d on the big circle, one request at a time (a report an
 * owner opens, not a hot path): the median wall time of `healthRequests` after one warm-up.
 * Target: under 1 s.
 */
export async function circleHealth(ctx: BenchContext): Promise<void> {
  const c = await bigCircle(ctx);
  const s = ctx.opts.sizes;
  const path = `/v1/circles/${c.circleId}/health?window=30d`;
  step(`circle_health: GET /health?window=30d, one warm-up then ${s.healthRequests} one at a time`);
  await api(ctx.service.url, 'GET', path, c.owner.token);
  const meter = await startCpuMeter(ctx.pool, ctx.service.redisUrl, serviceProcesses(ctx));
  const times: number[] = [];
  let sample = { activeMembers: 0, gini: 0, absenceFactor: 0 };
  for (let i = 0; i < s.healthRequests; i++) {
    const t0 = performance.now();
    sample = await api<typeof sample>(ctx.service.url, 'GET', path, c.owner.token);
    times.push(performance.now() - t0);
    progress(`circle_health: ${i + 1}/${s.healthRequests}, ${ms(times[i]!)}`);
  }
  progress('circle_health: done', true);
  const cpu = describeCpu(await meter(), times.length);
  const p50 = median(times);
  ctx.results.push({
    name: 'circle_health',
    value: p50,
    unit: 'ms p50',
    limit: 1000,
    ratio: p50 / 1000,
    target: '<= 1 (p50 under 1 s)',
    met: p50 <= 1000,
    notes:
      `${fmt(c.members.length)} members, ${fmt(s.circleRows)} contributions, ${fmt(s.circleRows / 10)} claims; ` +
      `${times.length} requests one at a time: ${times.map((t) => ms(t)).join(', ')} (${cpu}); ` +
      `active ${fmt(sample.activeMembers)}, Gini ${sample.gini}, absence factor ${fmt(sample.absenceFactor)}`,
  });
}
