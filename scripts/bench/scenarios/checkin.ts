import type { Transaction } from 'kysely';
import type { Database } from '../../../src/infra/database-schema.js';
import { checkInvariants } from '../../../src/audit/invariants.js';
import { createDb } from '../../../src/infra/postgres.js';
import { lockChallengeWithRole } from '../../../src/challenges/challenges.repository.js';
import {
  findClash,
  insertCheckin,
  lockParticipant,
  saveParticipant,
} from '../../../src/challenges/checkins.repository.js';
import { contentKey, normalizeContent } from '../../../src/challenges/checkin-content.js';
import { recordEvent } from '../../../src/events/events.repository.js';
import { captureDb } from '../lib/database.js';
import { fmt, step } from '../lib/report.js';
import { api } from '../lib/service.js';
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
  type Marketplace,
} from './context.js';

// Challenges per measured run. Request i checks member (i mod members) into challenge
// (i mod CHALLENGES); with a prime count and a member count of the form 2^a 5^b every pair comes
// round once in members x 29 requests, so no request meets an earlier check-in (a 409).
const CHALLENGES = 29;
const CONTENT = 'Today’s passage: slow down, it is faster.';

/** A fresh set of challenges of the marketplace's circle, running today (UTC days). */
async function newChallenges(ctx: BenchContext, m: Marketplace): Promise<string[]> {
  const today = new Date().toISOString().slice(0, 10);
  const end = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
  const ids: string[] = [];
  for (let i = 0; i < CHALLENGES; i++) {
    const body = { title: `Bench challenge ${i}`, startsOn: today, endsOn: end, timezone: 'UTC', pointsPerCheckin: 10 };
    ids.push(
      (await api<{ id: string }>(ctx.service.url, 'POST', `/v1/circles/${m.circleId}/challenges`, m.owner.token, body))
        .id,
    );
  }
  return ids;
}

/**
 * The statements one check-in runs, in its transaction, built by the service's own repository
 * functions with placeholders ('@user', '@challenge'); the streak arithmetic between them is the
 * first check-in's. The contribution row is the one statement written here: the service inserts
 * it with the id the check-in insert returned, which a replay cannot carry from one statement to
 * the next, so it reads that id back by the check-in's unique key instead.
 */
async function checkinStatements(m: Marketplace) {
  const capture = captureDb();
  const trx = capture.db as unknown as Transaction<Database>;
  const today = new Date().toISOString().slice(0, 10);
  const key = contentKey(normalizeContent(CONTENT));
  // The capture answers no rows, so the functions that expect one throw after their statement
  // was recorded: only the statement matters here.
  const recorded = (run: Promise<unknown>) => run.catch(() => undefined);
  await lockChallengeWithRole(trx, '@challenge', '@user', 'share');
  await recorded(lockParticipant(trx, { challengeId: '@challenge', userId: '@user', circleId: m.circleId }));
  await findClash(trx, { challengeId: '@challenge', userId: '@user', localDate: today, contentKey: key });
  await recorded(
    insertCheckin(trx, {
      challenge_id: '@challenge',
      circle_id: m.circleId,
      user_id: '@user',
      local_date: today,
      content: CONTENT,
      links: [],
      content_key: key,
      make_up: false,
      points: 10,
    }),
  );
  const contribution = {
    text: `INSERT INTO contributions (circle_id, project_id, user_id, source, checkin_id, points, created_by)
      SELECT circle_id, NULL, user_id, 'checkin', id, points, user_id FROM checkins
      WHERE challenge_id = $1 AND user_id = $2 AND local_date = $3 RETURNING *`,
    values: ['@challenge', '@user', today],
  };
  const before = capture.queries.length;
  await recorded(
    saveParticipant(
      trx,
      '@challenge',
      '@user',
      { checkins: 1, makeUpsUsed: 0 },
      { run: 1, best: 1, freezesUsed: 0, lastDate: today },
    ),
  );
  await recordEvent(trx, {
    circleId: m.circleId,
    type: 'checkin.recorded',
    subjectId: m.circleId,
    actorId: '@user',
    payload: { challengeId: 'x', userId: 'x', localDate: today, makeUp: false, points: 10 },
  });
  const queries = capture.queries;
  return [...queries.slice(0, before), contribution, ...queries.slice(before)];
}

/**
 * POST /v1/challenges/:id/checkins by many members at once, against the same statements straight
 * through pg in one transaction each, and behind a bare Fastify route (the HTTP floor). Every
 * measured run gets challenges of its own, so each (member, challenge) pair checks in once.
 */
export async function checkin(ctx: BenchContext): Promise<void> {
  const m = await getMarketplace(ctx);
  const s = ctx.opts.sizes;
  const label = 'checkin';
  const steps = await checkinStatements(m);
  const body = JSON.stringify({ content: CONTENT });
  const cpuOf = { pool: ctx.pool, redisUrl: ctx.service.redisUrl };
  const pairsOf = (challenges: string[]) => {
    let i = 0;
    return () => {
      const n = i++;
      return {
        method: 'POST' as const,
        path: `/v1/challenges/${challenges[n % challenges.length]}/checkins`,
        token: m.tokens[n % m.tokens.length]!,
        body,
      };
    };
  };

  const viaHttp = async (round: string) => {
    const challenges = await newChallenges(ctx, m);
    step(
      `${label}${round}: HTTP, ${s.connections} connections over ${fmt(m.tokens.length)} members x ${CHALLENGES} challenges, ${s.warmupSeconds} s warm-up + ${s.claimSeconds} s`,
    );
    const http = await measureHttp(ctx, {
      url: ctx.service.url,
      connections: s.connections,
      seconds: s.claimSeconds,
      label: `${label} HTTP`,
      next: pairsOf(challenges),
      processes: serviceProcesses(ctx),
    });
    const {
      rows: [counts],
    } = await ctx.pool.query<{ checkins: number; points: number }>(
      `SELECT (SELECT count(*)::int FROM checkins WHERE challenge_id = ANY($1::uuid[])) AS checkins,
              (SELECT count(*)::int FROM contributions c JOIN checkins k ON k.id = c.checkin_id WHERE k.challenge_id = ANY($1::uuid[])) AS points`,
      [challenges],
    );
    const answered = http.warmOk + http.ok;
    const c = counts!;
    if (c.checkins < answered || c.checkins > answered + 2 * s.connections || c.points !== c.checkins)
      ctx.failures.push(`${label}: ${answered} answers 201 but ${c.checkins} check-ins and ${c.points} contributions`);
    if (Object.keys(http.failures).length)
      ctx.failures.push(`${label}: non-2xx responses ${JSON.stringify(http.failures)}`);
    const db = createDb(ctx.databaseUrl, 2);
    const broken = (await checkInvariants(db)).filter((r) => r.violations > 0).map((r) => r.name);
    await db.destroy();
    if (broken.length) ctx.failures.push(`${label}: invariants violated after the HTTP run: ${broken.join(', ')}`);
    step(
      `${label}: ${fmt(c.checkins)} check-ins and ${fmt(c.points)} contributions for ${fmt(answered)} answers 201, invariants ${broken.length ? `VIOLATED: ${broken.join(', ')}` : 'hold'}`,
    );
    return http;
  };
  const straightSql = async (round: string) => {
    const challenges = await newChallenges(ctx, m);
    step(
      `${label}${round}: the endpoint's SQL straight through pg (${steps.length} statements in a transaction), ${s.connections} connections`,
    );
    return sqlLoad(
      {
        databaseUrl: ctx.databaseUrl,
        connections: s.connections,
        warmupSeconds: s.warmupSeconds,
        seconds: s.claimSeconds,
        steps,
        rotations: { '@user': m.members, '@challenge': challenges },
        transaction: true,
      },
      `${label} SQL straight`,
      cpuOf,
    );
  };
  const bareRoute = async (round: string) => {
    const challenges = await newChallenges(ctx, m);
    step(`${label}${round}: the endpoint's SQL behind a bare Fastify route, ${s.connections} connections`);
    return bareRouteLoad(
      ctx,
      `${label} bare route`,
      s.claimSeconds,
      steps,
      { '@user': m.members, '@challenge': challenges },
      pairsOf(challenges),
    );
  };

  const runs = {
    http: [] as Awaited<ReturnType<typeof viaHttp>>[],
    straight: [] as SqlLoadResult[],
    bare: [] as Awaited<ReturnType<typeof bareRoute>>[],
  };
  for (let r = 0; r < s.rounds; r++) {
    const round = s.rounds > 1 ? ` (round ${r + 1}/${s.rounds})` : '';
    runs.http.push(await viaHttp(round));
    runs.straight.push(await straightSql(round));
    runs.bare.push(await bareRoute(round));
  }
  const http = best(runs.http);
  const straight = best(runs.straight);
  ctx.results.push({
    name: label,
    value: http.rps,
    unit: 'req/s',
    limit: straight.rps,
    ratio: http.rps / straight.rps,
    target: '>= 0.7',
    met: http.rps / straight.rps >= 0.7,
    notes: `${rounds(runs.http, runs.straight)}HTTP ${fmt(http.rps)} check-ins/s, p50 ${ms(http.p50)}, p99 ${ms(http.p99)} (${http.cpu})${failureText(http.failures)}; endpoint SQL straight ${fmt(straight.rps)}/s, p50 ${ms(straight.p50)}, p99 ${ms(straight.p99)} (${straight.cpu})`,
  });
  ctx.results.push(bareRouteResult(label, http.rps, straight.rps, best(runs.bare), runs.bare));
}
