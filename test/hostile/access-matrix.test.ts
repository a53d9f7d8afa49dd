import { randomUUID } from 'node:crypto';
import t from 'tap';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { call, isProblem, registerUser } from '../helper.js';
import {
  ACTORS,
  buildWorld,
  changedTables,
  defaultParams,
  fillPath,
  openApiComponents,
  routeTable,
  snapshot,
  changedTableNames,
  v1Routes,
  type Actor,
  type RouteInfo,
  type World,
} from './world.js';

// Every /v1 route in the OpenAPI document x every kind of caller, against the access rules of
// DESIGN.md section 7: anonymous 401 (except register, login, refresh); outsiders and the owner of
// another circle 404 on a circle's resources (never learning they exist); members 403 on owner and
// admin routes; members, admins and owners succeed where their role allows. Status codes alone
// would let a route that writes before it refuses pass: every refused call is bracketed by a
// snapshot of every table and must change nothing. Every 2xx body must match the response schema
// the route documents, compiled with ajv as the service compiles its request schemas.

// ajv-formats is CommonJS; its default export arrives wrapped under ESM interop.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** A validator per route and status, from the OpenAPI document (shared schemas resolved). */
function responseValidators(routes: RouteInfo[], components: Record<string, unknown>) {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  const validators = new Map<string, ValidateFunction>();
  for (const route of routes) {
    for (const [status, schema] of Object.entries(route.responseSchemas)) {
      // The document's own references (#/components/schemas/...) resolve against this root.
      validators.set(`${route.key} ${status}`, ajv.compile({ ...schema, components }));
    }
  }
  return (route: RouteInfo, status: number) => validators.get(`${route.key} ${status}`);
}

type Expected = Partial<Record<Actor, number>>;

interface Cell {
  expect: Expected;
  /** A valid body (a function when each request needs its own, e.g. a new handle). */
  body?: (w: World) => unknown | Promise<unknown>;
  /** Path parameters other than the shared fixtures. */
  params?: (w: World) => Record<string, string>;
  /** For cells expected to succeed on a route that uses up its object: a new one per request. */
  fresh?: (w: World) => Promise<Record<string, string>>;
}

const PASSWORD = 'correct horse battery';
const all = (status: number): Expected => ({
  anonymous: 401,
  outsider: status,
  member: status,
  admin: status,
  owner: status,
  otherOwner: status,
});
/** A resource of the main circle: outsiders and the other circle's owner get 404. */
const inCircle = (member: number, admin: number, owner: number): Expected => ({
  anonymous: 401,
  outsider: 404,
  otherOwner: 404,
  member,
  admin,
  owner,
});
const open = (status: number): Expected => ({
  anonymous: status,
  outsider: status,
  member: status,
  admin: status,
  owner: status,
  otherOwner: status,
});

let handles = 0;
let checkins = 0;
const EXPECTED: Record<string, Cell> = {
  'POST /v1/auth/register': {
    expect: open(201),
    body: () => ({ handle: `matrix_${process.pid}_${handles++}`, password: PASSWORD }),
  },
  'POST /v1/auth/login': { expect: open(200), body: (w) => ({ handle: w.users.owner.handle, password: PASSWORD }) },
  'POST /v1/auth/refresh': {
    expect: open(200),
    body: async (w) => ({
      refreshToken: (
        await call(w.app, 'POST', '/v1/auth/login', { body: { handle: w.users.owner.handle, password: PASSWORD } })
      ).body.refreshToken,
    }),
  },
  // Logging out with a token that is not live changes nothing and is answered the same.
  'POST /v1/auth/logout': { expect: all(204), body: () => ({ refreshToken: 'not-a-live-token' }) },
  'GET /v1/me': { expect: all(200) },
  'PATCH /v1/me': { expect: all(200), body: () => ({ displayName: 'Renamed' }) },
  // The same password again: the change succeeds and every later cell can still log in.
  'POST /v1/me/password': { expect: all(204), body: () => ({ currentPassword: PASSWORD, newPassword: PASSWORD }) },
  'GET /v1/me/claims': { expect: all(200) },
  'GET /v1/me/tasks': { expect: all(200) },
  'GET /v1/me/balances': { expect: all(200) },
  'GET /v1/me/ledger': { expect: all(200) },
  'GET /v1/me/ledger.csv': { expect: all(200) },
  'POST /v1/circles': { expect: all(201), body: () => ({ name: 'Another circle', joinPolicy: 'open' }) },
  'GET /v1/circles': { expect: all(200) },
  'GET /v1/circles/{circleId}': { expect: inCircle(200, 200, 200) },
  // Settings are the owner's alone: admins are refused like members.
  'PATCH /v1/circles/{circleId}': { expect: inCircle(403, 403, 200), body: () => ({ timezone: 'Asia/Shanghai' }) },
  'GET /v1/circles/{circleId}/events': { expect: inCircle(200, 200, 200) },
  'GET /v1/me/events': { expect: all(200) },
  'GET /v1/circles/{circleId}/leaderboard': { expect: inCircle(200, 200, 200) },
  'GET /v1/circles/{circleId}/health': { expect: inCircle(403, 200, 200) },
  'POST /v1/circles/{circleId}/invites': { expect: inCircle(403, 201, 201), body: () => ({}) },
  'GET /v1/circles/{circleId}/invites': { expect: inCircle(403, 200, 200) },
  'DELETE /v1/circles/{circleId}/invites/{code}': {
    expect: inCircle(403, 204, 204),
    fresh: async (w) => ({
      code: (await call(w.app, 'POST', `/v1/circles/${w.circleId}/invites`, { token: w.users.owner.token, body: {} }))
        .body.code,
    }),
  },
  // The main circle is invite-only: joining without a code is the outsider's 404; its members
  // know it exists and are told they are in it already.
  'POST /v1/circles/{circleId}/members': { expect: inCircle(409, 409, 409), body: () => ({}) },
  'GET /v1/circles/{circleId}/members': { expect: inCircle(200, 200, 200) },
  'PATCH /v1/circles/{circleId}/members/{userId}': {
    expect: inCircle(403, 403, 200),
    body: () => ({ role: 'member' }),
  },
  'DELETE /v1/circles/{circleId}/members/{userId}': {
    expect: inCircle(403, 204, 204),
    params: (w) => ({ userId: bystander(w) }),
    fresh: async (w) => ({ userId: await w.fresh.plainMember() }),
  },
  'POST /v1/circles/{circleId}/projects': { expect: inCircle(403, 201, 201), body: () => ({ title: 'New project' }) },
  'GET /v1/circles/{circleId}/projects': { expect: inCircle(200, 200, 200) },
  'GET /v1/projects/{projectId}': { expect: inCircle(200, 200, 200) },
  'PATCH /v1/projects/{projectId}': { expect: inCircle(403, 200, 200), body: () => ({ title: 'Renamed project' }) },
  'POST /v1/projects/{projectId}/tasks': {
    expect: inCircle(403, 201, 201),
    body: () => ({ tasks: [{ title: 'Added' }] }),
  },
  'GET /v1/projects/{projectId}/tasks': { expect: inCircle(200, 200, 200) },
  'GET /v1/projects/{projectId}/contributions.csv': { expect: inCircle(200, 200, 200) },
  'GET /v1/tasks/{taskId}': { expect: inCircle(200, 200, 200) },
  'PATCH /v1/tasks/{taskId}': { expect: inCircle(403, 200, 200), body: () => ({ title: 'Renamed task' }) },
  'POST /v1/tasks/{taskId}/cancel': {
    expect: inCircle(403, 200, 200),
    body: () => ({ reason: 'No longer needed' }),
    fresh: async (w) => ({ taskId: await w.fresh.task() }),
  },
  'PUT /v1/tasks/{taskId}/dependencies': { expect: inCircle(403, 200, 200), body: () => ({ dependsOn: [] }) },
  'POST /v1/tasks/{taskId}/claims': { expect: inCircle(201, 201, 201) },
  'POST /v1/projects/{projectId}/claims/next': { expect: inCircle(201, 201, 201), body: () => ({}) },
  'GET /v1/projects/{projectId}/claims': { expect: inCircle(200, 200, 200) },
  'GET /v1/tasks/{taskId}/claims': { expect: inCircle(403, 200, 200) },
  'GET /v1/claims/{claimId}': { expect: inCircle(200, 200, 200) },
  'POST /v1/claims/{claimId}/extend': { expect: inCircle(200, 403, 403), body: () => ({}) },
  'POST /v1/claims/{claimId}/release': {
    expect: inCircle(200, 403, 403),
    fresh: async (w) => ({ claimId: await w.fresh.activeClaim() }),
  },
  'POST /v1/claims/{claimId}/revoke': {
    expect: inCircle(403, 200, 200),
    body: () => ({ reason: 'Abandoned' }),
    fresh: async (w) => ({ claimId: await w.fresh.activeClaim() }),
  },
  'POST /v1/claims/{claimId}/submissions': {
    expect: inCircle(201, 403, 403),
    body: () => ({ content: 'The work' }),
    fresh: async (w) => ({ claimId: await w.fresh.activeClaim() }),
  },
  'GET /v1/claims/{claimId}/submissions': {
    expect: inCircle(200, 200, 200),
    params: (w) => ({ claimId: w.submittedClaimId }),
  },
  'POST /v1/claims/{claimId}/reviews': {
    expect: inCircle(403, 201, 201),
    body: () => ({ decision: 'accept' }),
    params: (w) => ({ claimId: w.submittedClaimId }),
    fresh: async (w) => ({ claimId: await w.fresh.submittedClaim() }),
  },
  'GET /v1/circles/{circleId}/review-queue': { expect: inCircle(403, 200, 200) },
  'GET /v1/projects/{projectId}/contributions': { expect: inCircle(200, 200, 200) },
  'POST /v1/projects/{projectId}/adjustments': {
    expect: inCircle(403, 201, 201),
    body: (w) => ({ userId: w.users.member.id, points: 5, reason: 'Helped out' }),
  },
  'POST /v1/projects/{projectId}/settlements': {
    expect: inCircle(403, 202, 202),
    body: () => ({}),
    fresh: async (w) => ({ projectId: await w.fresh.project() }),
  },
  'GET /v1/projects/{projectId}/settlement-preview': { expect: inCircle(403, 200, 200) },
  'GET /v1/settlements/{settlementId}': { expect: inCircle(200, 200, 200) },
  'GET /v1/settlements/{settlementId}/statements/{userId}': { expect: inCircle(200, 200, 200) },
  'GET /v1/settlements/{settlementId}/payouts.csv': { expect: inCircle(200, 200, 200) },
  'POST /v1/circles/{circleId}/challenges': {
    expect: inCircle(403, 201, 201),
    body: () => {
      const today = new Date().toISOString().slice(0, 10);
      return {
        title: 'Write daily',
        startsOn: today,
        endsOn: today,
        timezone: 'Pacific/Pago_Pago',
        pointsPerCheckin: 1,
      };
    },
  },
  'GET /v1/circles/{circleId}/challenges': { expect: inCircle(200, 200, 200) },
  'GET /v1/challenges/{challengeId}': { expect: inCircle(200, 200, 200) },
  'PATCH /v1/challenges/{challengeId}': {
    expect: inCircle(403, 200, 200),
    body: () => ({ title: 'Renamed challenge' }),
  },
  'POST /v1/challenges/{challengeId}/cancel': {
    expect: inCircle(403, 200, 200),
    body: () => ({ reason: 'Not this month' }),
    fresh: async (w) => ({ challengeId: await w.fresh.challenge() }),
  },
  // Each of member, admin and owner checks in once today.
  'POST /v1/challenges/{challengeId}/checkins': {
    expect: inCircle(201, 201, 201),
    body: () => ({ content: `A passage worth keeping, ${checkins++}` }),
  },
  'GET /v1/challenges/{challengeId}/checkins': { expect: inCircle(200, 200, 200) },
  'GET /v1/challenges/{challengeId}/leaderboard': { expect: inCircle(200, 200, 200) },
  'POST /v1/circles/{circleId}/webhooks': {
    expect: inCircle(403, 201, 201),
    body: () => ({ url: 'https://hooks.example.com/circle', events: ['task.completed'] }),
  },
  'GET /v1/circles/{circleId}/webhooks': { expect: inCircle(403, 200, 200) },
  'PATCH /v1/circles/{circleId}/webhooks/{webhookId}': {
    expect: inCircle(403, 200, 200),
    body: () => ({ description: 'Announcements' }),
  },
  'DELETE /v1/circles/{circleId}/webhooks/{webhookId}': {
    expect: inCircle(403, 204, 204),
    fresh: async (w) => ({ webhookId: await w.fresh.webhook() }),
  },
  'POST /v1/circles/{circleId}/webhooks/{webhookId}/rotate-secret': { expect: inCircle(403, 200, 200) },
  'GET /v1/circles/{circleId}/webhooks/{webhookId}/deliveries': { expect: inCircle(403, 200, 200) },
  // Each redelivery leaves its message pending: a new delivery for each.
  'POST /v1/circles/{circleId}/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver': {
    expect: inCircle(403, 202, 202),
    fresh: async (w) => ({ deliveryId: await w.fresh.delivery() }),
  },
};

// A plain member nobody else uses, the target of DELETE cells expected to be refused (the default
// target, `member`, removing themselves would be leaving, which is allowed).
const bystanders = new WeakMap<World, string>();
const bystander = (w: World) => bystanders.get(w)!;

t.test(
  "access matrix: every /v1 route x anonymous, outsider, member, admin, owner, other circle's owner",
  async (t) => {
    const world = await buildWorld(t);
    bystanders.set(world, await world.fresh.plainMember());
    const routes = v1Routes(await routeTable(world.app));
    t.ok(routes.length >= 35, `the route table lists ${routes.length} /v1 routes`);
    const validatorFor = responseValidators(routes, await openApiComponents(world.app));

    const unlisted = routes.filter((r) => !EXPECTED[r.key]).map((r) => r.key);
    if (unlisted.length) t.comment(`no explicit expectations yet (generic rules applied): ${unlisted.join(', ')}`);
    const stale = Object.keys(EXPECTED).filter((key) => !routes.some((r) => r.key === key));
    t.same(stale, [], 'every row of the expectation table is a documented route');

    let requests = 0;
    let keyed = 0;
    let refused = 0;
    let validated = 0;
    for (const route of routes) {
      const cell = EXPECTED[route.key];
      for (const actor of ACTORS) {
        const token = actor === 'anonymous' ? undefined : world.users[actor].token;
        let expected = cell?.expect[actor];
        if (!cell) {
          // Generic rule for a route added since this table was written: the documented ones.
          if (actor === 'anonymous' && !route.anonymous) expected = 401;
          else if ((actor === 'outsider' || actor === 'otherOwner') && route.pathParams.length) expected = 404;
        }
        const succeeds = expected !== undefined && expected < 300;
        const params = {
          ...defaultParams(world),
          ...cell?.params?.(world),
          ...(succeeds && cell?.fresh ? await cell.fresh(world) : {}),
        };
        const body = cell?.body ? await cell.body(world) : route.body ? {} : undefined;
        const url = fillPath(route.path, params);
        const before = await snapshot(world.db);
        // A request expected to succeed on an idempotent route carries a key: its change must
        // mark the key as applied in the change's own transaction (see below).
        const key = succeeds && route.idempotent ? randomUUID() : undefined;
        const headers: Record<string, string> = key ? { 'idempotency-key': key } : {};
        const res = await call(world.app, route.method, url, { token, body, headers });
        requests++;
        const label = `${route.key} as ${actor}: ${res.status} ${res.status >= 400 ? JSON.stringify(res.body) : ''}`;
        if (res.status >= 400) {
          refused++;
          const changed = changedTables(before, await snapshot(world.db));
          t.equal(changed, '', `${route.key} as ${actor}: refused with ${res.status}, the database is unchanged`);
        } else if (res.status < 300) {
          t.ok(route.responses.includes(res.status), `${route.key} as ${actor}: ${res.status} is documented`);
          if (key) {
            keyed++;
            const changed = changedTableNames(before, await snapshot(world.db)).filter(
              (table) => table !== 'public.idempotency_keys',
            );
            const row = await world.db
              .selectFrom('idempotency_keys')
              .select('applied_at')
              .where('key', '=', key)
              .executeTakeFirstOrThrow();
            t.equal(
              row.applied_at !== null,
              changed.length > 0,
              `${route.key} as ${actor}: its key is marked applied exactly when it changed something (${changed.join(' ')})`,
            );
          }
          const validate = validatorFor(route, res.status);
          if (validate) {
            validated++;
            t.ok(
              validate(res.body),
              `${route.key} as ${actor}: the ${res.status} body matches its schema ${JSON.stringify(validate.errors)}`,
            );
          }
        }
        if (expected === undefined) {
          t.ok(res.status < 500, label);
          continue;
        }
        t.equal(res.status, expected, label);
        if (expected >= 400) {
          t.ok(isProblem(res, expected), `${route.key} as ${actor} answers problem+json`);
          if (expected === 404 && route.pathParams.length)
            t.match(res.body.code, /_not_found$/, `${route.key} as ${actor}: a not-found code`);
          if (expected === 401) t.equal(res.body.code, 'missing_token');
        }
      }
    }
    t.comment(
      `SUMMARY hostile/access-matrix routes=${routes.length} actors=${ACTORS.length} requests=${requests} keyed=${keyed} refusedUnchanged=${refused} bodiesValidated=${validated}`,
    );
  },
);

t.test('a member sees only their own statement; a member who left is an outsider again', async (t) => {
  const world = await buildWorld(t);
  const { app, users } = world;
  const other = await call(app, 'GET', `/v1/settlements/${world.settlementId}/statements/${users.admin.id}`, {
    token: users.member.token,
  });
  t.ok(isProblem(other, 403, 'forbidden'), "another member's statement is 403");

  const leaver = await registerUser(app, 'leaver');
  const invite = await call(app, 'POST', `/v1/circles/${world.circleId}/invites`, {
    token: users.owner.token,
    body: {},
  });
  t.equal(
    (
      await call(app, 'POST', `/v1/circles/${world.circleId}/members`, {
        token: leaver.token,
        body: { inviteCode: invite.body.code },
      })
    ).status,
    201,
  );
  t.equal((await call(app, 'GET', `/v1/projects/${world.projectId}`, { token: leaver.token })).status, 200);
  t.equal(
    (await call(app, 'DELETE', `/v1/circles/${world.circleId}/members/${leaver.id}`, { token: leaver.token })).status,
    204,
  );
  for (const url of [
    `/v1/circles/${world.circleId}`,
    `/v1/projects/${world.projectId}`,
    `/v1/tasks/${world.taskId}`,
    `/v1/settlements/${world.settlementId}`,
  ]) {
    const res = await call(app, 'GET', url, { token: leaver.token });
    t.equal(res.status, 404, `${url} after leaving`);
  }
  const claim = await call(app, 'POST', `/v1/tasks/${world.taskId}/claims`, { token: leaver.token });
  t.equal(claim.status, 404, 'and cannot claim');
});
