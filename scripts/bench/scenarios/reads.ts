import { findProjectWithRole } from '../../../src/projects/projects.repository.js';
import { findTaskWithRole, listClaimableForMember, listTasks } from '../../../src/tasks/tasks.repository.js';
import { captureDb, type Captured } from '../lib/database.js';
import { fmt, step, timed } from '../lib/report.js';
import { SKILLS, createCircle, createProject, seedTasks } from '../lib/seed.js';
import { sqlLoad, type SqlLoadResult } from '../lib/sql-load.js';
import {
  bareRouteLoad,
  bareRouteResult,
  best,
  failureText,
  getMarketplace,
  measureHttp,
  ms,
  rounds,
  serviceProcesses,
  type BenchContext,
} from './context.js';

export interface ReadBench {
  name: string;
  target: number;
  what: string;
  /** The i-th request: path and the member (index into the marketplace's members) making it. */
  request: (i: number) => { path: string; member: number };
  /** The statements the endpoint runs, captured from the repository functions with placeholders. */
  steps: Captured[];
  rotations: Record<string, string[]>;
}

/**
 * The endpoint against two limits in alternating rounds: its statements straight through pg, and
 * the same statements behind a bare Fastify route (the HTTP floor). Each side keeps its best round.
 */
export async function compare(ctx: BenchContext, b: ReadBench, callers?: { tokens: string[] }): Promise<void> {
  // The marketplace's members by default; a scenario on a circle of its own passes its callers.
  const m = callers ?? (await getMarketplace(ctx));
  const s = ctx.opts.sizes;
  let i = 0;
  const next = () => {
    const r = b.request(i++);
    return { method: 'GET' as const, path: r.path, token: m.tokens[r.member]! };
  };
  const httpRuns: Awaited<ReturnType<typeof measureHttp>>[] = [];
  const bareRuns: Awaited<ReturnType<typeof measureHttp>>[] = [];
  const sqlRuns: SqlLoadResult[] = [];
  for (let r = 0; r < s.rounds; r++) {
    const round = s.rounds > 1 ? ` (round ${r + 1}/${s.rounds})` : '';
    step(
      `${b.name}${round}: HTTP ${b.what}, ${s.connections} connections, ${s.warmupSeconds} s warm-up + ${s.readSeconds} s`,
    );
    const run = await measureHttp(ctx, {
      url: ctx.service.url,
      connections: s.connections,
      seconds: s.readSeconds,
      label: `${b.name} HTTP`,
      next,
      processes: serviceProcesses(ctx),
    });
    httpRuns.push(run);
    if (Object.keys(run.failures).length)
      ctx.failures.push(`${b.name}: non-2xx responses ${JSON.stringify(run.failures)}`);

    step(
      `${b.name}${round}: the endpoint's SQL straight through pg (${b.steps.length} statements per request), ${s.connections} connections`,
    );
    sqlRuns.push(
      await sqlLoad(
        {
          databaseUrl: ctx.databaseUrl,
          connections: s.connections,
          warmupSeconds: s.warmupSeconds,
          seconds: s.readSeconds,
          steps: b.steps,
          rotations: b.rotations,
        },
        `${b.name} SQL straight`,
        { pool: ctx.pool, redisUrl: ctx.service.redisUrl },
      ),
    );

    step(`${b.name}${round}: the same SQL behind a bare Fastify route, ${s.connections} connections`);
    bareRuns.push(await bareRouteLoad(ctx, `${b.name} bare route`, s.readSeconds, b.steps, b.rotations, next));
  }
  const http = best(httpRuns);
  const straight = best(sqlRuns);
  const bare = best(bareRuns);
  const ratio = http.rps / straight.rps;
  ctx.results.push({
    name: b.name,
    value: http.rps,
    unit: 'req/s',
    limit: straight.rps,
    ratio,
    target: `>= ${b.target}`,
    met: ratio >= b.target,
    notes:
      `${rounds(httpRuns, sqlRuns)}HTTP p50 ${ms(http.p50)}, p99 ${ms(http.p99)} (${http.cpu})${failureText(http.failures)}; ` +
      `SQL straight ${fmt(straight.rps)}/s, p50 ${ms(straight.p50)}, p99 ${ms(straight.p99)} (${straight.cpu})${straight.empty ? `; ${straight.empty} empty results` : ''}`,
  });
  ctx.results.push(bareRouteResult(b.name, http.rps, straight.rps, bare, bareRuns));
}

/** The claimable board filtered by skill, first page of 50: GET /v1/projects/:id/tasks. */
export async function taskBoard(ctx: BenchContext): Promise<void> {
  const m = await getMarketplace(ctx);
  const readers = Math.min(ctx.opts.sizes.readUsers, m.members.length);
  const capture = captureDb();
  // The service checks membership with the project, then lists the page.
  await findProjectWithRole(capture.db, m.projectId, '@user');
  await listTasks(capture.db, m.projectId, { claimable: true, skill: '@skill' }, 50, null);
  await compare(ctx, {
    name: 'task_board',
    target: 0.7,
    what: 'claimable tasks by skill, 50 per page',
    request: (i) => ({
      path: `/v1/projects/${m.projectId}/tasks?claimable=true&skill=${SKILLS[i % SKILLS.length]}&limit=50`,
      member: i % readers,
    }),
    steps: capture.queries,
    rotations: { '@user': m.members.slice(0, readers), '@skill': SKILLS },
  });
}

/** One task by id, as a member sees it: GET /v1/tasks/:id. */
export async function taskRead(ctx: BenchContext): Promise<void> {
  const m = await getMarketplace(ctx);
  const readers = Math.min(ctx.opts.sizes.readUsers, m.members.length);
  const { rows } = await ctx.pool.query<{ id: string }>(
    'SELECT id FROM tasks WHERE project_id = $1 ORDER BY random() LIMIT 10000',
    [m.projectId],
  );
  const taskIds = rows.map((r) => r.id);
  const capture = captureDb();
  await findTaskWithRole(capture.db, '@task', '@user');
  await compare(ctx, {
    name: 'task_read',
    target: 0.6,
    what: `random tasks (${fmt(taskIds.length)} ids)`,
    request: (i) => ({ path: `/v1/tasks/${taskIds[i % taskIds.length]}`, member: i % readers }),
    steps: capture.queries,
    rotations: { '@user': m.members.slice(0, readers), '@task': taskIds },
  });
}

/** The member's circles besides the marketplace's: 19 more, each with an open project of this many tasks. */
const OTHER_CIRCLES = 19;
const OTHER_CIRCLE_TASKS = 2_000;

/**
 * A member's board across circles: GET /v1/me/tasks?skill=X, first page of 50. The readers also
 * join 19 more circles, each with an open project, so each request merges 20 projects' claimable
 * pages, one of them the marketplace's project of 200,000 open tasks.
 */
export async function myTasks(ctx: BenchContext): Promise<void> {
  const m = await getMarketplace(ctx);
  const readers = m.members.slice(0, Math.min(ctx.opts.sizes.readUsers, m.members.length));
  await timed(
    `seeding ${OTHER_CIRCLES} more circles for the readers, ${fmt(OTHER_CIRCLE_TASKS)} tasks each`,
    async () => {
      for (let i = 0; i < OTHER_CIRCLES; i++) {
        const circleId = await createCircle(ctx.service.url, m.owner, `Bench circle ${i + 2}`);
        const projectId = await createProject(ctx.service.url, m.owner, circleId, `Bench project ${i + 2}`);
        await seedTasks(ctx.pool, circleId, projectId, OTHER_CIRCLE_TASKS);
        await ctx.pool.query(
          `INSERT INTO memberships (circle_id, user_id, role) SELECT $1::uuid, unnest($2::uuid[]), 'member'`,
          [circleId, readers],
        );
      }
      await ctx.pool.query('VACUUM ANALYZE memberships, projects, tasks');
    },
  );
  const capture = captureDb();
  await listClaimableForMember(capture.db, '@user', '@skill', 50, null);
  await compare(ctx, {
    name: 'my_tasks',
    target: 0.7,
    what: `claimable tasks by skill across ${OTHER_CIRCLES + 1} circles, 50 per page`,
    request: (i) => ({ path: `/v1/me/tasks?skill=${SKILLS[i % SKILLS.length]}&limit=50`, member: i % readers.length }),
    steps: capture.queries,
    rotations: { '@user': readers, '@skill': SKILLS },
  });
}
