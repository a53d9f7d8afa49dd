import { createHmac } from 'node:crypto';
import t from 'tap';
import { sql } from 'kysely';
import { controlClock } from '../clock.js';
import { buildTestApp, call, isProblem, registerUser } from '../helper.js';
import { eventTypes } from '../marketplace-helpers.js';

// Register, login, refresh-token rotation, and every way an access token can be wrong.

const PASSWORD = 'correct horse battery';

/** Builds a JWT by hand, so tests can forge the tokens an attacker would send. */
function forgeJwt(
  payload: Record<string, unknown>,
  secret: string,
  header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' },
): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const data = `${enc(header)}.${enc(payload)}`;
  const signature = header.alg === 'none' ? '' : createHmac('sha256', secret).update(data).digest('base64url');
  return `${data}.${signature}`;
}

t.test('register, then login, then use the access token', async (t) => {
  const { app, db } = await buildTestApp(t);
  const reg = await call(app, 'POST', '/v1/auth/register', {
    body: { handle: 'Ann_1', password: PASSWORD, displayName: 'Ann' },
  });
  t.equal(reg.status, 201);
  t.match(reg.body.user, { handle: 'Ann_1', displayName: 'Ann', skills: [] });
  t.match(reg.body.user.id, /^[0-9a-f-]{36}$/);
  t.type(reg.body.accessToken, 'string');
  t.type(reg.body.refreshToken, 'string');

  const row = await db
    .selectFrom('users')
    .select(['handle', 'password_hash'])
    .where('id', '=', reg.body.user.id)
    .executeTakeFirstOrThrow();
  t.equal(row.handle, 'Ann_1');
  t.match(row.password_hash, /^scrypt\$/, 'the password is stored hashed');
  t.notMatch(row.password_hash, PASSWORD);

  const noName = await call(app, 'POST', '/v1/auth/register', { body: { handle: 'bob_1', password: PASSWORD } });
  t.equal(noName.body.user.displayName, 'bob_1', 'the display name defaults to the handle');

  const login = await call(app, 'POST', '/v1/auth/login', { body: { handle: 'ann_1', password: PASSWORD } });
  t.equal(login.status, 200, 'login matches the handle case-insensitively');
  t.equal(login.body.user.id, reg.body.user.id);

  const me = await call(app, 'GET', '/v1/me', { token: login.body.accessToken });
  t.equal(me.status, 200);
  t.equal(me.body.id, reg.body.user.id);
});

t.test('handles are unique regardless of case', async (t) => {
  const { app, db } = await buildTestApp(t);
  t.equal(
    (await call(app, 'POST', '/v1/auth/register', { body: { handle: 'Carol', password: PASSWORD } })).status,
    201,
  );
  for (const handle of ['Carol', 'carol', 'CAROL']) {
    const res = await call(app, 'POST', '/v1/auth/register', { body: { handle, password: PASSWORD } });
    t.ok(isProblem(res, 409, 'handle_taken'), `${handle}: ${JSON.stringify(res.body)}`);
  }
  const count = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  t.equal(Number(count.n), 1);
});

t.test('register refuses invalid input with the path of each field', async (t) => {
  const { app, db } = await buildTestApp(t);
  const res = await call(app, 'POST', '/v1/auth/register', { body: { handle: 'a b', password: 'short' } });
  t.ok(isProblem(res, 400, 'invalid_request'));
  const paths = res.body.errors.map((e: { path: string }) => e.path).sort();
  t.same(paths, ['body/handle', 'body/password']);

  const missing = await call(app, 'POST', '/v1/auth/register', { body: {} });
  t.ok(isProblem(missing, 400, 'invalid_request'));
  t.same(missing.body.errors.map((e: { path: string }) => e.path).sort(), ['body/handle', 'body/password']);

  const extra = await call(app, 'POST', '/v1/auth/register', {
    body: { handle: 'dave', password: PASSWORD, skills: ['x'] },
  });
  t.ok(isProblem(extra, 400, 'invalid_request'));
  t.same(extra.body.errors, [{ path: 'body/skills', message: 'is not an allowed field' }]);

  const users = await db.selectFrom('users').select('id').execute();
  t.equal(users.length, 0, 'nothing was created');
});

t.test('login with a wrong password or unknown handle is 401 invalid_credentials', async (t) => {
  const { app } = await buildTestApp(t);
  const user = await registerUser(app);
  const wrong = await call(app, 'POST', '/v1/auth/login', {
    body: { handle: user.handle, password: 'not the password' },
  });
  t.ok(isProblem(wrong, 401, 'invalid_credentials'));
  const unknown = await call(app, 'POST', '/v1/auth/login', { body: { handle: 'nobody_here', password: PASSWORD } });
  t.ok(isProblem(unknown, 401, 'invalid_credentials'));
  t.equal(unknown.body.detail, wrong.body.detail, 'an unknown handle looks the same as a wrong password');
  const empty = await call(app, 'POST', '/v1/auth/login', { body: { handle: user.handle } });
  t.ok(isProblem(empty, 400, 'invalid_request'));
  t.same(
    empty.body.errors.map((e: { path: string }) => e.path),
    ['body/password'],
  );
});

t.test('refresh rotates the token; reusing an old one revokes the whole family', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);

  const first = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
  t.equal(first.status, 200);
  t.equal(first.body.user.id, user.id);
  t.not(first.body.refreshToken, user.refreshToken, 'a new refresh token is issued');
  t.equal(
    (await call(app, 'GET', '/v1/me', { token: first.body.accessToken })).status,
    200,
    'the new access token works',
  );

  const second = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: first.body.refreshToken } });
  t.equal(second.status, 200, 'the rotated token can be refreshed in turn');

  // The first token was already rotated: presenting it again means it leaked.
  const reuse = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
  t.ok(isProblem(reuse, 401, 'refresh_token_reused'), JSON.stringify(reuse.body));

  const newest = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: second.body.refreshToken } });
  t.ok(isProblem(newest, 401, 'invalid_refresh_token'), 'the newest token of the family stopped working too');

  const rows = await db
    .selectFrom('refresh_tokens')
    .select(['family_id', 'revoked_at'])
    .where('user_id', '=', user.id)
    .execute();
  t.equal(rows.length, 3);
  t.equal(new Set(rows.map((r) => r.family_id)).size, 1, 'all three belong to one family');
  t.ok(
    rows.every((r) => r.revoked_at !== null),
    'every token of the family is revoked',
  );
  const ended = await db
    .selectFrom('events')
    .select(['type', 'payload'])
    .where('subject_id', '=', user.id)
    .orderBy('id')
    .execute();
  t.same(ended, [{ type: 'session.ended', payload: { reason: 'refresh_token_reused' } }], 'the revocation is recorded');
  t.ok(isProblem(await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } }), 401));
  t.equal((await eventTypes(db, user.id)).length, 1, 'presented again, it revokes nothing more and records nothing');

  // Another login starts a separate family that the revocation did not touch.
  const login = await call(app, 'POST', '/v1/auth/login', { body: { handle: user.handle, password: PASSWORD } });
  const fresh = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: login.body.refreshToken } });
  t.equal(fresh.status, 200);
});

t.test('a rotation that fails to store the new token spends nothing: the retry works', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app, 'rotating');
  // The database refuses the new token, as a connection cut between the two writes would leave it.
  await sql`
    CREATE FUNCTION refuse_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'refresh_tokens is read-only for maintenance'; END $$;
    CREATE TRIGGER refuse_tokens BEFORE INSERT ON refresh_tokens FOR EACH ROW EXECUTE FUNCTION refuse_tokens();`.execute(
    db,
  );
  const cut = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
  t.equal(cut.status, 500);
  await sql`DROP TRIGGER refuse_tokens ON refresh_tokens; DROP FUNCTION refuse_tokens();`.execute(db);
  t.same(
    await db.selectFrom('refresh_tokens').select(['rotated_at', 'revoked_at']).execute(),
    [{ rotated_at: null, revoked_at: null }],
    'the presented token is not spent',
  );

  const retried = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
  t.equal(retried.status, 200, 'the retry rotates it, instead of revoking the session as a reuse');
  const me = await call(app, 'GET', '/v1/me', { token: retried.body.accessToken });
  t.equal(me.status, 200);
});

t.test('unknown and expired refresh tokens are 401 invalid_refresh_token', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);
  const unknown = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: 'not-a-token-we-issued' } });
  t.ok(isProblem(unknown, 401, 'invalid_refresh_token'));

  await db
    .updateTable('refresh_tokens')
    .set({ expires_at: new Date(Date.now() - 1000) })
    .where('user_id', '=', user.id)
    .execute();
  const expired = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
  t.ok(isProblem(expired, 401, 'invalid_refresh_token'));

  const missing = await call(app, 'POST', '/v1/auth/refresh', { body: {} });
  t.ok(isProblem(missing, 400, 'invalid_request'));
});

t.test(
  'a token accepted while valid is refused once it expires (verified tokens are remembered only until their exp)',
  async (t) => {
    const { app, config } = await buildTestApp(t);
    const user = await registerUser(app);
    const { secret, issuer, audience } = config.jwt;
    const now = Math.floor(Date.now() / 1000);
    const token = forgeJwt({ sub: user.id, iss: issuer, aud: audience, iat: now, exp: now + 60 }, secret);

    t.equal((await call(app, 'GET', '/v1/me', { token })).status, 200);
    t.equal((await call(app, 'GET', '/v1/me', { token })).status, 200, 'accepted again while valid');
    controlClock(t).advance(61_000);
    const late = await call(app, 'GET', '/v1/me', { token });
    t.ok(isProblem(late, 401, 'token_expired'), JSON.stringify(late.body));
  },
);

t.test('access tokens: every forged, stale or malformed token is refused', async (t) => {
  const { app, config } = await buildTestApp(t);
  const user = await registerUser(app);
  const { secret, issuer, audience } = config.jwt;
  const now = Math.floor(Date.now() / 1000);
  const good = { sub: user.id, iss: issuer, aud: audience, iat: now, exp: now + 600 };

  const control = await call(app, 'GET', '/v1/me', { token: forgeJwt(good, secret) });
  t.equal(control.status, 200, 'a correctly signed token with the right claims works');

  const anonymous = await call(app, 'GET', '/v1/me');
  t.ok(isProblem(anonymous, 401, 'missing_token'));

  const expired = await call(app, 'GET', '/v1/me', {
    token: forgeJwt({ ...good, iat: now - 1200, exp: now - 600 }, secret),
  });
  t.ok(isProblem(expired, 401, 'token_expired'), JSON.stringify(expired.body));

  const cases: [string, string][] = [
    ['signed with another secret', forgeJwt(good, 'another-secret-that-is-also-long-enough-0123456789')],
    ['alg none', forgeJwt(good, secret, { alg: 'none', typ: 'JWT' })],
    [
      'alg HS512 with the right secret',
      (() => {
        const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const data = `${enc({ alg: 'HS512', typ: 'JWT' })}.${enc(good)}`;
        return `${data}.${createHmac('sha512', secret).update(data).digest('base64url')}`;
      })(),
    ],
    [
      'tampered payload',
      (() => {
        const [h, , s] = user.token.split('.');
        const claims = JSON.parse(Buffer.from(user.token.split('.')[1]!, 'base64url').toString());
        const other = Buffer.from(JSON.stringify({ ...claims, sub: '00000000-0000-4000-8000-000000000000' })).toString(
          'base64url',
        );
        return `${h}.${other}.${s}`;
      })(),
    ],
    ['wrong aud', forgeJwt({ ...good, aud: 'some-other-api' }, secret)],
    ['wrong iss', forgeJwt({ ...good, iss: 'someone-else' }, secret)],
    ['no aud', forgeJwt({ sub: user.id, iss: issuer, iat: now, exp: now + 600 }, secret)],
    ['no iss', forgeJwt({ sub: user.id, aud: audience, iat: now, exp: now + 600 }, secret)],
    ['no exp', forgeJwt({ sub: user.id, iss: issuer, aud: audience, iat: now }, secret)],
    ['no sub', forgeJwt({ iss: issuer, aud: audience, iat: now, exp: now + 600 }, secret)],
    ['not a JWT', 'garbage'],
    ['the refresh token', user.refreshToken],
  ];
  for (const [name, token] of cases) {
    const res = await call(app, 'GET', '/v1/me', { token });
    t.ok(isProblem(res, 401, 'invalid_token'), `${name}: ${res.status} ${JSON.stringify(res.body)}`);
  }

  const basic = await call(app, 'GET', '/v1/me', {
    headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
  });
  t.ok(isProblem(basic, 401, 'invalid_token'), 'a non-bearer scheme is refused');
  for (const authorization of ['Bearer', 'Bearer ', `Bearer ${user.token} extra`, `Bearer  ${user.token}`]) {
    const res = await call(app, 'GET', '/v1/me', { headers: { authorization } });
    t.ok(
      isProblem(res, 401, 'invalid_token'),
      `malformed header ${JSON.stringify(authorization.replace(user.token, '<token>'))}`,
    );
  }
  const lower = await call(app, 'GET', '/v1/me', { headers: { authorization: `bearer ${user.token}` } });
  t.equal(lower.status, 200, 'the scheme is case-insensitive');
});
