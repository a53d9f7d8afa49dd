import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { Test } from 'tap';
import type { Db } from '../../src/infra/postgres.js';
import { addMember, buildTestApp, call, createCircle, registerUser, type TestEnv, type TestUser } from '../helper.js';
import { addTasks, circleWithRoles, completeTask, createProject } from '../marketplace-helpers.js';
import { addDays } from '../../src/challenges/challenge-days.js';
import { relayEvents } from '../../src/worker.js';
import { deliverAttempt } from '../../src/webhooks/webhook-delivery.job.js';

// The fixtures every hostile-input test shares, built once per file through the HTTP API, and the
// route table read from the service's own OpenAPI document: a route added later is covered by the
// matrix, the mass-assignment check and the fuzzer without anyone listing it here.

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';
export type Actor = 'anonymous' | 'outsider' | 'member' | 'admin' | 'owner' | 'otherOwner';
export const ACTORS: Actor[] = ['anonymous', 'outsider', 'member', 'admin', 'owner', 'otherOwner'];

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  additionalProperties?: boolean | JsonSchema;
  [k: string]: unknown;
}

export interface RouteInfo {
  method: Method;
  /** Fastify form, e.g. /v1/circles/:circleId */
  path: string;
  /** The OpenAPI form, e.g. /v1/circles/{circleId}; also the key of the expectation tables. */
  key: string;
  pathParams: string[];
  query: Record<string, JsonSchema>;
  body?: JsonSchema;
  responses: number[];
  /** The JSON body schema documented for each status, where the answer is JSON. */
  responseSchemas: Record<number, JsonSchema>;
  anonymous: boolean;
  /** Declares the Idempotency-Key header: a creating POST whose retries are safe. */
  idempotent: boolean;
}

/** The shared schemas of /openapi.json, which the route schemas refer to (#/components/schemas/...). */
export async function openApiComponents(app: FastifyInstance): Promise<Record<string, unknown>> {
  return (await call(app, 'GET', '/openapi.json')).body.components;
}

/** Every operation in /openapi.json, with its parameters and body schema. */
export async function routeTable(app: FastifyInstance): Promise<RouteInfo[]> {
  const doc = (await call(app, 'GET', '/openapi.json')).body as {
    paths: Record<
      string,
      Record<
        string,
        {
          parameters?: { in: string; name: string; schema: JsonSchema }[];
          requestBody?: { content: Record<string, { schema: JsonSchema }> };
          responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }>;
          security?: unknown[];
        }
      >
    >;
  };
  const routes: RouteInfo[] = [];
  for (const [key, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      const params = op.parameters ?? [];
      routes.push({
        method: method.toUpperCase() as Method,
        path: key.replace(/\{(\w+)\}/g, ':$1'),
        key: `${method.toUpperCase()} ${key}`,
        pathParams: params.filter((p) => p.in === 'path').map((p) => p.name),
        query: Object.fromEntries(params.filter((p) => p.in === 'query').map((p) => [p.name, p.schema])),
        body: op.requestBody?.content['application/json']?.schema,
        responses: Object.keys(op.responses).map(Number),
        responseSchemas: Object.fromEntries(
          Object.entries(op.responses).flatMap(([status, response]) => {
            const schema = response.content?.['application/json']?.schema;
            return schema ? [[Number(status), schema]] : [];
          }),
        ),
        anonymous: Array.isArray(op.security) && op.security.length === 0,
        idempotent: params.some((p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key'),
      });
    }
  }
  return routes;
}

export const v1Routes = (routes: RouteInfo[]) => routes.filter((r) => r.path.startsWith('/v1/'));

export interface World extends TestEnv {
  app: FastifyInstance;
  users: Record<Exclude<Actor, 'anonymous'>, TestUser>;
  /** The main circle (invite-only): owner, admin and member belong to it. */
  circleId: string;
  /** The other owner's own circle. */
  otherCircleId: string;
  /** An open project with plenty of claimable tasks. */
  projectId: string;
  /** A task with many slots, so each actor may claim it once. */
  taskId: string;
  /** An active claim held by `member`. */
  claimId: string;
  /** A submitted claim held by `member`. */
  submittedClaimId: string;
  /** A completed settlement of a second project in which `member` earned points. */
  settlementId: string;
  /** A running check-in challenge of the main circle (UTC days, started yesterday). */
  challengeId: string;
  /** A webhook endpoint of the main circle (subscribed to project.created). */
  webhookId: string;
  /** One finished delivery attempt of that endpoint (refused: its host is localhost). */
  deliveryId: string;
  /** Fresh objects for cells that change what they touch (each call makes a new one). */
  fresh: {
    project: () => Promise<string>;
    task: () => Promise<string>;
    activeClaim: () => Promise<string>;
    submittedClaim: () => Promise<string>;
    plainMember: () => Promise<string>;
    challenge: () => Promise<string>;
    webhook: () => Promise<string>;
    delivery: () => Promise<string>;
  };
}

export async function buildWorld(t: Test, env: Record<string, string> = {}): Promise<World> {
  const { app, db, config } = await buildTestApp(t, env);
  const { owner, circle, admin, member, outsider } = await circleWithRoles(app, { joinPolicy: 'invite' });
  const otherOwner = await registerUser(app, 'other');
  const other = await createCircle(app, otherOwner, 'open');

  const project = await createProject(app, owner, circle.id, { rewardPool: { amount: 1000, unit: 'points' } });
  const [multi] = await addTasks(app, owner, project.id, [{ title: 'Many slots', slots: 50 }]);
  // Enough single-slot tasks for every claims/next and every fresh claim a test asks for.
  await addTasks(
    app,
    owner,
    project.id,
    Array.from({ length: 100 }, (_, i) => ({ title: `Task ${i}` })),
  );
  const [forClaim, forSubmission] = await addTasks(app, owner, project.id, [
    { title: 'Claimed' },
    { title: 'Submitted' },
  ]);

  const claimOn = async (taskId: string) => {
    const res = await call(app, 'POST', `/v1/tasks/${taskId}/claims`, { token: member.token });
    if (res.status !== 201) throw new Error(`claim failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id as string;
  };
  const submit = async (claimId: string) => {
    const res = await call(app, 'POST', `/v1/claims/${claimId}/submissions`, {
      token: member.token,
      body: { content: 'Done' },
    });
    if (res.status !== 201) throw new Error(`submit failed: ${res.status} ${JSON.stringify(res.body)}`);
  };
  const claimId = await claimOn(forClaim!.id);
  const submittedClaimId = await claimOn(forSubmission!.id);
  await submit(submittedClaimId);

  const settled = await createProject(app, owner, circle.id, { rewardPool: { amount: 999, unit: 'points' } });
  const [paid] = await addTasks(app, owner, settled.id, [{ title: 'Paid work' }]);
  await completeTask(app, owner, member, paid!.id);
  const settlement = await call(app, 'POST', `/v1/projects/${settled.id}/settlements`, {
    token: owner.token,
    body: {},
  });
  if (settlement.status !== 202)
    throw new Error(`settle failed: ${settlement.status} ${JSON.stringify(settlement.body)}`);

  const newChallenge = async () => {
    const today = new Date().toISOString().slice(0, 10);
    const res = await call(app, 'POST', `/v1/circles/${circle.id}/challenges`, {
      token: owner.token,
      body: {
        title: 'Daily reading',
        startsOn: addDays(today, -1),
        endsOn: addDays(today, 30),
        timezone: 'UTC',
        pointsPerCheckin: 5,
      },
    });
    if (res.status !== 201) throw new Error(`create challenge failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id as string;
  };
  const challengeId = await newChallenge();

  // A webhook whose deliveries are attempted here, without a worker: its host is localhost, which
  // the default settings refuse at connect time, so an attempt is recorded without any network.
  // One attempt per message and no auto-disable, so each delivery is finished and redeliverable.
  const newWebhook = async () => {
    const res = await call(app, 'POST', `/v1/circles/${circle.id}/webhooks`, {
      token: owner.token,
      body: { url: 'http://localhost:9/hook', events: ['project.created'] },
    });
    if (res.status !== 201) throw new Error(`create webhook failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id as string;
  };
  const webhookId = await newWebhook();
  const deliveryCtx = {
    db,
    queues: app.queues,
    log: app.log,
    config: { ...config, webhooks: { ...config.webhooks, maxAttempts: 1, disableAfterFailures: 1_000_000 } },
  };
  const newDelivery = async () => {
    await createProject(app, owner, circle.id, { title: 'Announced' });
    await relayEvents(deliveryCtx);
    const due = await db
      .selectFrom('webhook_messages')
      .select('id')
      .where('endpoint_id', '=', webhookId)
      .where('attempts', '=', 0)
      .execute();
    for (const m of due) await deliverAttempt(deliveryCtx, circle.id, m.id, 1);
    const latest = await db
      .selectFrom('webhook_attempts')
      .select('id')
      .where('endpoint_id', '=', webhookId)
      .orderBy('seq', 'desc')
      .executeTakeFirstOrThrow();
    return latest.id;
  };
  const deliveryId = await newDelivery();

  let extraTasks = 0;
  const freshTask = async () => {
    const [task] = await addTasks(app, owner, project.id, [{ title: `Fresh ${extraTasks++}` }]);
    return task!.id;
  };
  return {
    app,
    db,
    config,
    users: { outsider, member, admin, owner, otherOwner },
    circleId: circle.id,
    otherCircleId: other.id,
    projectId: project.id,
    taskId: multi!.id,
    claimId,
    submittedClaimId,
    settlementId: settlement.body.id,
    challengeId,
    webhookId,
    deliveryId,
    fresh: {
      project: async () =>
        (await createProject(app, owner, circle.id, { rewardPool: { amount: 10, unit: 'points' } })).id,
      task: freshTask,
      activeClaim: async () => claimOn(await freshTask()),
      submittedClaim: async () => {
        const id = await claimOn(await freshTask());
        await submit(id);
        return id;
      },
      plainMember: async () => (await addMember(app, owner, circle.id, 'member', 'plain')).id,
      challenge: newChallenge,
      webhook: newWebhook,
      delivery: newDelivery,
    },
  };
}

/** Path parameters of the shared fixtures; an unknown parameter gets an id that exists nowhere. */
export function defaultParams(world: World): Record<string, string> {
  return {
    circleId: world.circleId,
    projectId: world.projectId,
    taskId: world.taskId,
    claimId: world.claimId,
    settlementId: world.settlementId,
    challengeId: world.challengeId,
    webhookId: world.webhookId,
    deliveryId: world.deliveryId,
    userId: world.users.member.id,
  };
}

export function fillPath(path: string, params: Record<string, string>): string {
  return path.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(params[name] ?? randomUUID()));
}

/**
 * The only changes a refused request may make, each with its reason: a column of a table (the table
 * is then compared on its rows' contents without it), or rows of a table (left out of its count
 * and versions). Every other table is compared on its rows' versions.
 */
export const REFUSED_REQUESTS_MAY_CHANGE: ({ table: string; reason: string } & (
  | { column: string }
  | { rowsWhere: string }
))[] = [
  {
    table: 'public.refresh_tokens',
    column: 'revoked_at',
    reason:
      'replaying a refresh token that was already rotated is answered 401 and revokes its whole family: ' +
      'a stolen token must not outlive its detection',
  },
  {
    table: 'public.events',
    rowsWhere: "type = 'session.ended' AND payload ->> 'reason' = 'refresh_token_reused'",
    reason: 'that revocation is a change like any other, and is recorded with its event',
  },
];

/** Every table of the database from the catalogue (every schema but Postgres's own), sorted. */
const CATALOGUE = sql<{ name: string }>`
  SELECT coalesce(string_agg(n.nspname || '.' || c.relname, ' ' ORDER BY n.nspname, c.relname), '') AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
    AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'`;

/** What one table contributes to a snapshot. */
function probe(name: string) {
  const [schema, table] = name.split('.') as [string, string];
  const allowed = REFUSED_REQUESTS_MAY_CHANGE.filter((c) => c.table === name);
  const excluded = allowed.flatMap((c) => ('column' in c ? [c.column] : []));
  const rows = allowed.flatMap((c) =>
    'rowsWhere' in c ? [sql`AND NOT coalesce((${sql.raw(c.rowsWhere)}), false)`] : [],
  );
  if (excluded.length === 0) {
    return sql`(SELECT count(*) || ':' || coalesce(max(xmin::text::bigint), 0) FROM ${sql.table(`${schema}.${table}`)} t
      WHERE true ${sql.join(rows, sql` `)})`;
  }
  return sql`(SELECT count(*) || ':' || md5(coalesce(string_agg(r, ',' ORDER BY r), ''))
    FROM (SELECT (to_jsonb(t) - ${excluded}::text[])::text AS r FROM ${sql.table(`${schema}.${table}`)} t
      WHERE true ${sql.join(rows, sql` `)}) x)`;
}

const tablesOf = new WeakMap<Db, string>();

/**
 * A snapshot of every table of the database in one round trip: per table its row count and the
 * newest row version (max xmin), so an insert, an update or a delete anywhere shows up as a
 * difference. The tables are read from the catalogue (once per handle, and again whenever the
 * catalogue changes, which is itself a difference): a table added by a migration is covered without
 * naming it here. Tables with columns in REFUSED_REQUESTS_MAY_CHANGE are compared on a hash of their
 * rows without those columns instead.
 *
 * The text is `catalogue=<tables>` then `schema.table=<value>` for each table, joined by commas.
 */
export async function snapshot(db: Db): Promise<string> {
  let tables = tablesOf.get(db);
  if (tables === undefined) {
    tables = (await CATALOGUE.execute(db)).rows[0]!.name;
    tablesOf.set(db, tables);
  }
  const names = tables ? tables.split(' ') : [];
  const parts = [sql`'catalogue=' || (${CATALOGUE})`, ...names.map((name) => sql`${`${name}=`} || ${probe(name)}`)];
  const text = (await sql<{ s: string }>`SELECT concat_ws(',', ${sql.join(parts)}) AS s`.execute(db)).rows[0]!.s;
  if (!text.startsWith(`catalogue=${tables},`) && text !== `catalogue=${tables}`) tablesOf.delete(db);
  return text;
}

const parse = (text: string) => new Map(text.split(',').map((part) => part.split('=') as [string, string]));

/** The tables (and `catalogue`) whose part of two snapshots differs. */
export function changedTableNames(before: string, after: string): string[] {
  const a = parse(before),
    b = parse(after);
  return [...new Set([...a.keys(), ...b.keys()])].filter((table) => a.get(table) !== b.get(table));
}

/** Names the tables whose part of two snapshots differs, with both values. */
export function changedTables(before: string, after: string): string {
  const a = parse(before),
    b = parse(after);
  return changedTableNames(before, after)
    .map((table) => {
      if (table !== 'catalogue') return `${table} ${a.get(table) ?? '(absent)'} -> ${b.get(table) ?? '(absent)'}`;
      const was = new Set(a.get(table)?.split(' ')),
        is = new Set(b.get(table)?.split(' '));
      return `tables added: ${[...is].filter((n) => !was.has(n)).join(' ') || 'none'}, removed: ${[...was].filter((n) => !is.has(n)).join(' ') || 'none'}`;
    })
    .join('; ');
}

/** Row counts of every table, keyed by name (without `public.` for the service's own tables). */
export async function rowCounts(db: Db): Promise<Record<string, number>> {
  return Object.fromEntries(
    [...parse(await snapshot(db))]
      .filter(([table]) => table !== 'catalogue')
      .map(([table, value]) => [table.replace(/^public\./, ''), Number(value.split(':')[0])]),
  );
}
