import t from 'tap';
import { buildTestApp, call, isProblem, registerUser } from '../helper.js';

// The caller's own profile: GET and PATCH /v1/me.

t.test('GET /v1/me returns the caller profile; anonymous is 401', async (t) => {
  const { app } = await buildTestApp(t);
  const user = await registerUser(app);
  const other = await registerUser(app);

  const anon = await call(app, 'GET', '/v1/me');
  t.ok(isProblem(anon, 401, 'missing_token'));

  const me = await call(app, 'GET', '/v1/me', { token: user.token });
  t.equal(me.status, 200);
  t.same(Object.keys(me.body).sort(), ['createdAt', 'displayName', 'handle', 'id', 'skills']);
  t.match(me.body, { id: user.id, handle: user.handle, displayName: user.handle, skills: [] });
  t.ok(!Number.isNaN(Date.parse(me.body.createdAt)), 'createdAt is an ISO timestamp');

  const theirs = await call(app, 'GET', '/v1/me', { token: other.token });
  t.equal(theirs.body.id, other.id, 'each token sees only its own profile');
});

t.test('PATCH /v1/me updates the display name and normalizes skills', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);

  const res = await call(app, 'PATCH', '/v1/me', {
    token: user.token,
    body: { displayName: 'Ann Lee', skills: ['Writing', 'writing ', 'C#', 'design'] },
  });
  t.equal(res.status, 200);
  t.equal(res.body.displayName, 'Ann Lee');
  t.same(res.body.skills, ['writing', 'c#', 'design'], 'lower-cased, trimmed, once each, in order');

  const row = await db
    .selectFrom('users')
    .select(['display_name', 'skills'])
    .where('id', '=', user.id)
    .executeTakeFirstOrThrow();
  t.same(row, { display_name: 'Ann Lee', skills: ['writing', 'c#', 'design'] });

  const onlySkills = await call(app, 'PATCH', '/v1/me', { token: user.token, body: { skills: [] } });
  t.equal(onlySkills.body.displayName, 'Ann Lee', 'fields not sent stay as they were');
  t.same(onlySkills.body.skills, []);

  const nothing = await call(app, 'PATCH', '/v1/me', { token: user.token, body: {} });
  t.equal(nothing.status, 200);
  t.equal(nothing.body.displayName, 'Ann Lee');
});

t.test('PATCH /v1/me refuses bad input and protected fields', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);

  const anon = await call(app, 'PATCH', '/v1/me', { body: { displayName: 'x' } });
  t.ok(isProblem(anon, 401, 'missing_token'));

  // Mass assignment: fields the profile schema does not list are refused, not ignored.
  const handle = await call(app, 'PATCH', '/v1/me', { token: user.token, body: { handle: 'admin', displayName: 'x' } });
  t.ok(isProblem(handle, 400, 'invalid_request'));
  t.same(handle.body.errors, [{ path: 'body/handle', message: 'is not an allowed field' }]);

  const cases: [string, unknown, string][] = [
    ['empty display name', { displayName: '' }, 'body/displayName'],
    ['control character', { displayName: 'a\u0007b' }, 'body/displayName'],
    ['skill with a leading space', { skills: [' writing'] }, 'body/skills/0'],
    ['skills not an array', { skills: 'writing' }, 'body/skills'],
    ['too many skills', { skills: Array.from({ length: 31 }, (_, i) => `s${i}`) }, 'body/skills'],
  ];
  for (const [name, body, path] of cases) {
    const res = await call(app, 'PATCH', '/v1/me', { token: user.token, body });
    t.ok(isProblem(res, 400, 'invalid_request'), name);
    t.ok(
      res.body.errors.some((e: { path: string }) => e.path === path),
      `${name}: ${JSON.stringify(res.body.errors)}`,
    );
  }
  const row = await db
    .selectFrom('users')
    .select(['handle', 'display_name', 'skills'])
    .where('id', '=', user.id)
    .executeTakeFirstOrThrow();
  t.same(row, { handle: user.handle, display_name: user.handle, skills: [] }, 'nothing changed');
});
