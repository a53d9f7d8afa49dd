import { createHmac, randomUUID } from 'node:crypto';
import t from 'tap';
import { sql } from 'kysely';
import { MAX_TREE_DEPTH, MAX_TREE_NODES } from '../../src/tasks/task-tree.js';
import { MAX_LIST_ITEMS, MAX_OBJECT_FIELDS, MAX_REPORTED_ERRORS } from '../../src/http/validation.js';
import { buildTestApp, call, createCircle, isProblem, registerUser } from '../helper.js';
import { addTasks, createProject } from '../marketplace-helpers.js';
import { buildWorld, defaultParams, fillPath, routeTable, snapshot } from './world.js';

// Bounded sizes (body, task tree, page, string lengths), text Postgres cannot store, Unicode edge
// cases, and tokens that are validly signed yet wrong: each a clear 4xx that changes nothing.

const PASSWORD = 'correct horse battery';

function forgeJwt(payload: Record<string, unknown>, secret: string): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const data = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(payload)}`;
  return `${data}.${createHmac('sha256', secret).update(data).digest('base64url')}`;
}

t.test('bodies over BODY_LIMIT_BYTES are 413 on every kind of write, sent as text or bytes', async (t) => {
  const { app, db } = await buildTestApp(t, { BODY_LIMIT_BYTES: '4096' });
  const owner = await registerUser(app);
  const circle = await createCircle(app, owner);
  const project = await createProject(app, owner, circle.id);
  const before = await snapshot(db);
  const big = 'x'.repeat(5000);
  const cases: [string, string, unknown][] = [
    ['POST', `/v1/circles/${circle.id}/projects`, { title: 'x', description: big }],
    ['POST', `/v1/projects/${project.id}/tasks`, { tasks: [{ title: 'x', description: big }] }],
    ['PATCH', '/v1/me', { displayName: big }],
    ['POST', '/v1/auth/register', { handle: 'big_one', password: big }],
  ];
  for (const [method, url, body] of cases) {
    const res = await call(app, method as 'POST', url, { token: owner.token, body });
    t.ok(isProblem(res, 413, 'body_too_large'), `${method} ${url}: ${res.status}`);
    const bytes = await app.inject({
      method: method as 'POST',
      url,
      headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' },
      payload: Buffer.from(JSON.stringify(body)),
    });
    t.equal(bytes.statusCode, 413, `${method} ${url} as a Buffer`);
  }
  t.equal(await snapshot(db), before, 'nothing changed');
});

t.test('bodies with more fields or items than any request has: one short 400, before anyone signs in', async (t) => {
  const { app, db } = await buildTestApp(t);
  const before = await snapshot(db);
  const fields = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 0]));
  const login = (body: unknown) => call(app, 'POST', '/v1/auth/login', { body });

  // A body near the 1 MiB limit made of 90,000 unknown fields: it was a 5 MB answer listing each.
  const flood = await login({ handle: 'someone', password: PASSWORD, ...fields(90_000) });
  t.ok(isProblem(flood, 400, 'invalid_request'), `90,000 fields: ${flood.status}`);
  t.same(flood.body.errors, [{ path: 'body', message: `has more than ${MAX_OBJECT_FIELDS} fields` }]);
  const answer = JSON.stringify(flood.body).length;
  t.ok(answer < 2048, `the answer is short (${answer} bytes)`);

  const nested = await login({ handle: 'someone', password: PASSWORD, x: [{ y: fields(MAX_OBJECT_FIELDS + 1) }] });
  t.same(nested.body.errors, [{ path: 'body/x/0/y', message: `has more than ${MAX_OBJECT_FIELDS} fields` }]);
  const list = await login({ handle: 'someone', password: PASSWORD, x: new Array(MAX_LIST_ITEMS + 1).fill(0) });
  t.same(list.body.errors, [{ path: 'body/x', message: `has more than ${MAX_LIST_ITEMS} items` }]);

  // Under the shape limits, a schema reports its first MAX_REPORTED_ERRORS problems and counts the rest.
  const many = await login({ handle: 'someone', password: PASSWORD, ...fields(60) });
  t.ok(isProblem(many, 400, 'invalid_request'));
  t.equal(many.body.errors.length, MAX_REPORTED_ERRORS);
  t.match(many.body.detail, /the first 20; 40 more not listed/);
  t.equal(await snapshot(db), before, 'nothing changed');
});

t.test('task trees deeper or bigger than the limits are 400 and create nothing', async (t) => {
  const { app, db } = await buildTestApp(t, { BODY_LIMIT_BYTES: String(4 * 1024 * 1024) });
  const owner = await registerUser(app);
  const circle = await createCircle(app, owner);
  const project = await createProject(app, owner, circle.id);
  const chain = (levels: number): Record<string, unknown> =>
    levels === 1 ? { title: 'leaf' } : { title: `level ${levels}`, children: [chain(levels - 1)] };
  const before = await snapshot(db);

  const tooDeep = await call(app, 'POST', `/v1/projects/${project.id}/tasks`, {
    token: owner.token,
    body: { tasks: [chain(MAX_TREE_DEPTH + 1)] },
  });
  t.ok(isProblem(tooDeep, 400), `depth ${MAX_TREE_DEPTH + 1}: ${tooDeep.status}`);
  const absurd = await call(app, 'POST', `/v1/projects/${project.id}/tasks`, {
    token: owner.token,
    body: { tasks: [chain(2000)] },
  });
  t.ok(isProblem(absurd, 400), `depth 2000: ${absurd.status}`);

  const wide = Array.from({ length: MAX_TREE_NODES + 1 }, (_, i) => ({ title: `t${i}` }));
  const tooMany = await call(app, 'POST', `/v1/projects/${project.id}/tasks`, {
    token: owner.token,
    body: { tasks: wide },
  });
  t.ok(isProblem(tooMany, 400), `${MAX_TREE_NODES + 1} top-level tasks: ${tooMany.status}`);
  // Within each array's bound but over the total: 100 parents x 100 children = 10100 tasks.
  const bushy = Array.from({ length: 100 }, (_, i) => ({
    title: `p${i}`,
    children: Array.from({ length: 100 }, (_, j) => ({ title: `c${j}` })),
  }));
  const tooBig = await call(app, 'POST', `/v1/projects/${project.id}/tasks`, {
    token: owner.token,
    body: { tasks: bushy },
  });
  t.ok(isProblem(tooBig, 400), `10100 tasks in a tree: ${tooBig.status} ${tooBig.body?.code}`);
  const inProject = await call(app, 'POST', `/v1/circles/${circle.id}/projects`, {
    token: owner.token,
    body: { title: 'x', tasks: [chain(MAX_TREE_DEPTH + 1)] },
  });
  t.ok(isProblem(inProject, 400), 'the same limit applies when creating a project with its tree');
  t.equal(await snapshot(db), before, 'nothing was created');

  const deepest = await call(app, 'POST', `/v1/projects/${project.id}/tasks`, {
    token: owner.token,
    body: { tasks: [chain(MAX_TREE_DEPTH)] },
  });
  t.equal(deepest.status, 201, `exactly ${MAX_TREE_DEPTH} levels is allowed`);
});

t.test('page sizes outside 1-200 are 400 on every list route; 200 is allowed', async (t) => {
  const world = await buildWorld(t);
  const lists = (await routeTable(world.app)).filter((r) => r.method === 'GET' && 'limit' in r.query);
  t.ok(lists.length >= 6, `${lists.length} list routes`);
  for (const route of lists) {
    const url = fillPath(route.path, defaultParams(world));
    for (const limit of ['201', '0', '-1', '1000000000000', '1.5', 'abc', '', '1e3', 'NaN']) {
      const res = await call(world.app, 'GET', `${url}?limit=${limit}`, { token: world.users.owner.token });
      t.ok(isProblem(res, 400, 'invalid_request'), `${route.key} limit=${limit}: ${res.status}`);
      t.equal(res.body.errors?.[0]?.path, 'querystring/limit');
    }
    const max = await call(world.app, 'GET', `${url}?limit=200`, { token: world.users.owner.token });
    t.equal(max.status, 200, `${route.key} limit=200`);
    const forged = await call(world.app, 'GET', `${url}?cursor=${Buffer.from('["x",1]').toString('base64url')}`, {
      token: world.users.owner.token,
    });
    t.ok(isProblem(forged, 400), `${route.key} forged cursor: ${forged.status}`);
  }
});

t.test('strings: the longest allowed is accepted, one more is 400 naming the field', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app);
  const ok = await call(app, 'POST', '/v1/circles', {
    token: owner.token,
    body: { name: 'n'.repeat(100), description: 'd'.repeat(2000), joinPolicy: 'open' },
  });
  t.equal(ok.status, 201);
  const before = await snapshot(db);
  const long = await call(app, 'POST', '/v1/circles', {
    token: owner.token,
    body: { name: 'n'.repeat(101), description: 'd'.repeat(2001), joinPolicy: 'open' },
  });
  t.ok(isProblem(long, 400, 'invalid_request'));
  t.same(long.body.errors.map((e: { path: string }) => e.path).sort(), ['body/description', 'body/name']);
  // Length counts UTF-16 units as JSON Schema does... or code points: either way 101 emoji is too long.
  const emoji = await call(app, 'POST', '/v1/circles', {
    token: owner.token,
    body: { name: '🎉'.repeat(101), joinPolicy: 'open' },
  });
  t.ok(isProblem(emoji, 400, 'invalid_request'));
  const handle = await call(app, 'POST', '/v1/auth/register', {
    body: { handle: 'h'.repeat(31), password: 'p'.repeat(201) },
  });
  t.same(handle.body.errors.map((e: { path: string }) => e.path).sort(), ['body/handle', 'body/password']);
  t.equal(await snapshot(db), before);
});

t.test('a JSON body that is not valid UTF-8 is 400 invalid_json and changes nothing', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app);
  const before = await snapshot(db);
  const prefix = Buffer.from('{"name":"bad ');
  const suffix = Buffer.from('","joinPolicy":"open"}');
  for (const bad of [
    [0xff],
    [0xc3, 0x28],
    [0xed, 0xa0, 0x80],
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0xc0, 0xaf],
    [0xe2, 0x82],
  ]) {
    const payload = Buffer.concat([prefix, Buffer.from(bad), suffix]);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/circles',
      headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' },
      payload,
    });
    t.equal(res.statusCode, 400, `bytes ${Buffer.from(bad).toString('hex')}`);
    t.match(res.headers['content-type'], /^application\/problem\+json/);
    t.equal(res.json().code, 'invalid_json');
  }
  const login = await app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    headers: { 'content-type': 'application/json' },
    payload: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
  });
  t.equal(login.statusCode, 400, 'also before authentication');
  t.equal(await snapshot(db), before);
  const valid = await app.inject({
    method: 'POST',
    url: '/v1/circles',
    headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json; charset=utf-8' },
    payload: Buffer.from('{"name":"Café ☕ 中文","joinPolicy":"open"}'),
  });
  t.equal(valid.statusCode, 201, 'valid multi-byte UTF-8 is fine');
  t.equal(valid.json().name, 'Café ☕ 中文');
});

t.test('handles refuse look-alike and invisible characters', async (t) => {
  const { app, db } = await buildTestApp(t);
  const before = await snapshot(db);
  const handles = [
    'аdmin', // Cyrillic a
    'ａｄｍｉｎ', // full-width
    'ad\u200bmin',
    'ad\u200dmin',
    '\u202eadmin',
    'admin\u0000',
    'admin\ud800',
    'admin 🎉',
    'ad min',
    'admin\n',
    'ädmin',
    'admin%00',
    '<admin>',
  ];
  for (const handle of handles) {
    const res = await call(app, 'POST', '/v1/auth/register', { body: { handle, password: PASSWORD } });
    t.ok(isProblem(res, 400, 'invalid_request'), `${JSON.stringify(handle)}: ${res.status}`);
    t.equal(res.body.errors[0].path, 'body/handle');
  }
  t.equal(await snapshot(db), before);
});

t.test(
  'content keeps emoji, RTL, zero-width and combining text exactly; NUL and lone surrogates are 400',
  async (t) => {
    const { app, db } = await buildTestApp(t);
    const owner = await registerUser(app);
    const circle = await createCircle(app, owner);
    const project = await createProject(app, owner, circle.id);

    const tricky = [
      '🧑‍🤝‍🧑 family ZWJ 🏳️‍🌈',
      'مرحبا \u202bRTL\u202c עברית',
      'zero\u200bwidth\u200c\u200d\ufeff',
      'e\u0301\u0301 Z̵̢͎a̸l̷g̶o',
      '𝕳𝖊𝖑𝖑𝖔 \u{10FFFF}',
      'tab\tnew\nline\r\\"quote',
    ];
    for (const text of tricky) {
      const [task] = await addTasks(app, owner, project.id, [{ title: text.slice(0, 200), description: text }]);
      const read = await call(app, 'GET', `/v1/tasks/${task!.id}`, { token: owner.token });
      t.equal(read.body.description, text, `round trip: ${JSON.stringify(text)}`);
    }

    // Postgres refuses NUL in text outright: this is why the API must refuse it first (it was a 500).
    await t.rejects(sql`SELECT ${'a\u0000b'}::text`.execute(db), { code: '22021' });

    const before = await snapshot(db);
    const cases: [string, string, unknown, string][] = [
      [
        'POST',
        `/v1/projects/${project.id}/tasks`,
        { tasks: [{ title: 'ok', description: 'a\u0000b' }] },
        'body/tasks/0/description',
      ],
      ['POST', `/v1/circles/${circle.id}/projects`, { title: 'nul\u0000' }, 'body/title'],
      ['PATCH', '/v1/me', { displayName: 'x\u0000' }, 'body/displayName'],
      ['POST', '/v1/circles', { name: 'lone \ud800 high', joinPolicy: 'open' }, 'body/name'],
      ['POST', '/v1/circles', { name: 'lone \udc00 low', joinPolicy: 'open' }, 'body/name'],
      ['POST', '/v1/auth/login', { handle: 'a\u0000', password: 'x' }, 'body/handle'],
      [
        'POST',
        `/v1/projects/${project.id}/tasks`,
        { tasks: [{ title: 'ok', skills: ['\u0000'] }] },
        'body/tasks/0/skills/0',
      ],
    ];
    for (const [method, url, body, path] of cases) {
      const res = await call(app, method as 'POST', url, { token: owner.token, body });
      t.ok(
        isProblem(res, 400, 'invalid_request'),
        `${method} ${url} ${path}: ${res.status} ${JSON.stringify(res.body)}`,
      );
      t.ok(
        res.body.errors?.some((e: { path: string }) => e.path === path),
        `names ${path}`,
      );
    }
    const query = await call(app, 'GET', `/v1/projects/${project.id}/tasks?skill=%00`, { token: owner.token });
    t.ok(isProblem(query, 400, 'invalid_request'), 'NUL in a query string');
    t.equal(query.body.errors[0].path, 'querystring/skill');
    const surrogateQuery = await call(app, 'GET', `/v1/projects/${project.id}/tasks?skill=%ED%A0%80`, {
      token: owner.token,
    });
    // The query parser decodes invalid UTF-8 leniently (to U+FFFD); queries only filter reads, so
    // that is a search for a skill nobody has, not stored text.
    t.equal(surrogateQuery.status, 200, 'invalid UTF-8 bytes in a query filter match nothing');
    t.same(surrogateQuery.body.items, []);
    const escaped = await app.inject({
      method: 'POST',
      url: '/v1/circles',
      headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' },
      payload: '{"name":"esc \\u0000 aped","joinPolicy":"open"}',
    });
    t.equal(escaped.statusCode, 400, 'NUL written as a JSON escape');
    t.equal(await snapshot(db), before, 'nothing was stored');
  },
);

t.test('validly signed tokens that are still wrong: non-uuid subject, unknown account, not yet valid', async (t) => {
  const { app, config } = await buildTestApp(t);
  const { secret, issuer, audience } = config.jwt;
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: issuer, aud: audience, iat: now, exp: now + 600 };
  for (const sub of ['not-a-uuid', '', "1' OR '1'='1", '00000000-0000-0000-0000-00000000000g']) {
    for (const [method, url, body] of [
      ['GET', '/v1/me'],
      ['GET', '/v1/circles'],
      ['POST', '/v1/circles', { name: 'x', joinPolicy: 'open' }],
    ] as const) {
      const res = await call(app, method, url, {
        token: forgeJwt({ ...claims, sub }, secret),
        ...(body ? { body } : {}),
      });
      t.ok(isProblem(res, 401, 'invalid_token'), `sub ${JSON.stringify(sub)} ${method} ${url}: ${res.status}`);
    }
  }
  // An account this database does not have (a token minted for another environment sharing the key).
  const ghost = forgeJwt({ ...claims, sub: randomUUID() }, secret);
  t.ok(
    isProblem(
      await call(app, 'POST', '/v1/circles', { token: ghost, body: { name: 'x', joinPolicy: 'open' } }),
      401,
      'invalid_token',
    ),
    'creating a circle',
  );
  const owner = await registerUser(app);
  const circle = await createCircle(app, owner);
  t.ok(
    isProblem(
      await call(app, 'POST', `/v1/circles/${circle.id}/members`, { token: ghost, body: {} }),
      401,
      'invalid_token',
    ),
    'joining a circle',
  );
  t.ok(
    isProblem(await call(app, 'GET', '/v1/me', { token: ghost }), 404, 'user_not_found'),
    'reading a profile that does not exist',
  );

  const notYet = forgeJwt({ ...claims, sub: owner.id, nbf: now + 3600 }, secret);
  t.ok(isProblem(await call(app, 'GET', '/v1/me', { token: notYet }), 401), 'nbf in the future');
  const fromFuture = forgeJwt({ ...claims, sub: owner.id, iat: now + 3600, exp: now + 7200 }, secret);
  t.ok((await call(app, 'GET', '/v1/me', { token: fromFuture })).status < 500, 'iat in the future is no server error');
  const twoHeaders = await app.inject({
    method: 'GET',
    url: '/v1/me',
    headers: { authorization: [`Bearer ${owner.token}`, 'Bearer garbage'] as unknown as string },
  });
  t.ok(
    twoHeaders.statusCode === 200 || twoHeaders.statusCode === 401,
    `two Authorization headers: ${twoHeaders.statusCode}`,
  );
  const huge = await call(app, 'GET', '/v1/me', { token: 'a'.repeat(10_000) });
  t.ok(isProblem(huge, 401, 'invalid_token'), 'a 10 kB token');
});

t.test(
  'the one refused request allowed to write: a replayed refresh token revokes its family and records it, nothing else',
  async (t) => {
    const { app, db } = await buildTestApp(t);
    const user = await registerUser(app);
    const rotated = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
    t.equal(rotated.status, 200);
    const revokedBefore = await db.selectFrom('refresh_tokens').where('revoked_at', 'is not', null).execute();
    t.equal(revokedBefore.length, 0, 'no token of the family is revoked yet');
    const before = await snapshot(db);
    const replay = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
    t.ok(isProblem(replay, 401, 'refresh_token_reused'), JSON.stringify(replay.body));
    const revoked = await db.selectFrom('refresh_tokens').where('revoked_at', 'is not', null).execute();
    t.equal(revoked.length, 2, 'the replay revoked both tokens of the family');
    t.equal(await snapshot(db), before, 'the snapshot ignores only that column and that event: nothing else changed');
    await sql`UPDATE refresh_tokens SET rotated_at = now()`.execute(db);
    t.not(await snapshot(db), before, 'any other column of refresh_tokens still counts');
    const afterColumn = await snapshot(db);
    await sql`INSERT INTO events (type, subject_id, payload) VALUES ('session.ended', ${user.id}::uuid, '{}')`.execute(
      db,
    );
    t.not(await snapshot(db), afterColumn, 'and any other event');
  },
);
