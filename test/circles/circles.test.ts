import t from 'tap';
import { buildTestApp, call, createCircle, isProblem, registerUser } from '../helper.js';
import { circleWithRoles } from '../marketplace-helpers.js';

// Creating circles, listing the caller's circles, reading one.

t.test('POST /v1/circles creates a circle owned by the caller, with its event', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');

  const anon = await call(app, 'POST', '/v1/circles', { body: { name: 'Readers', joinPolicy: 'open' } });
  t.ok(isProblem(anon, 401, 'missing_token'));

  const res = await call(app, 'POST', '/v1/circles', {
    token: owner.token,
    body: { name: 'Readers', description: 'We read', joinPolicy: 'invite' },
  });
  t.equal(res.status, 201);
  t.match(res.body, {
    name: 'Readers',
    description: 'We read',
    joinPolicy: 'invite',
    ownerId: owner.id,
    role: 'owner',
    timezone: 'UTC',
  });
  t.same(Object.keys(res.body).sort(), [
    'createdAt',
    'description',
    'id',
    'joinPolicy',
    'name',
    'ownerId',
    'role',
    'timezone',
  ]);

  const members = await db
    .selectFrom('memberships')
    .select(['user_id', 'role', 'left_at'])
    .where('circle_id', '=', res.body.id)
    .execute();
  t.same(members, [{ user_id: owner.id, role: 'owner', left_at: null }]);
  const events = await db.selectFrom('events').select(['type', 'circle_id', 'subject_id', 'actor_id']).execute();
  t.same(events, [{ type: 'circle.created', circle_id: res.body.id, subject_id: res.body.id, actor_id: owner.id }]);

  const noDescription = await call(app, 'POST', '/v1/circles', {
    token: owner.token,
    body: { name: 'Bare', joinPolicy: 'open' },
  });
  t.equal(noDescription.body.description, '');
});

t.test('POST /v1/circles refuses invalid bodies and creates nothing', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const cases: [string, unknown, string][] = [
    ['no joinPolicy', { name: 'x' }, 'body/joinPolicy'],
    ['unknown joinPolicy', { name: 'x', joinPolicy: 'closed' }, 'body/joinPolicy'],
    ['empty name', { name: '', joinPolicy: 'open' }, 'body/name'],
    ['name too long', { name: 'x'.repeat(101), joinPolicy: 'open' }, 'body/name'],
    ['owner in the body', { name: 'x', joinPolicy: 'open', ownerId: owner.id }, 'body/ownerId'],
    ['no body', undefined, 'body/name'],
  ];
  for (const [name, body, path] of cases) {
    const res = await call(app, 'POST', '/v1/circles', { token: owner.token, body });
    t.ok(isProblem(res, 400, 'invalid_request'), name);
    t.ok(
      res.body.errors?.some((e: { path: string }) => e.path === path),
      `${name}: ${JSON.stringify(res.body.errors)}`,
    );
  }
  t.equal((await db.selectFrom('circles').select('id').execute()).length, 0);
});

t.test("GET /v1/circles lists only the caller's circles, with their role, page by page", async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const other = await registerUser(app, 'other');
  const anon = await call(app, 'GET', '/v1/circles');
  t.ok(isProblem(anon, 401, 'missing_token'));

  const mine: string[] = [];
  for (let i = 0; i < 5; i++) mine.push((await createCircle(app, owner)).id);
  const theirs = await createCircle(app, other);
  // The owner of `theirs` adds our owner as a plain member.
  const invite = await call(app, 'POST', `/v1/circles/${theirs.id}/invites`, { token: other.token, body: {} });
  await call(app, 'POST', `/v1/circles/${theirs.id}/members`, {
    token: owner.token,
    body: { inviteCode: invite.body.code },
  });
  await createCircle(app, other);

  const seen: { id: string; role: string }[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const url: string = `/v1/circles?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
    const page = await call(app, 'GET', url, { token: owner.token });
    t.equal(page.status, 200);
    t.ok(page.body.items.length <= 2);
    seen.push(...page.body.items.map((c: { id: string; role: string }) => ({ id: c.id, role: c.role })));
    cursor = page.body.nextCursor;
    pages++;
  } while (cursor && pages < 10);
  t.equal(pages, 3, '6 circles in pages of 2');
  t.same(
    seen.map((c) => c.id),
    [...mine, theirs.id],
    'oldest membership first, no duplicates or gaps',
  );
  t.same(
    seen.map((c) => c.role),
    ['owner', 'owner', 'owner', 'owner', 'owner', 'member'],
  );

  const all = await call(app, 'GET', '/v1/circles', { token: owner.token });
  t.equal(all.body.items.length, 6);
  t.equal(all.body.nextCursor, null);

  const newcomer = await registerUser(app, 'new');
  const none = await call(app, 'GET', '/v1/circles', { token: newcomer.token });
  t.same(none.body, { items: [], nextCursor: null });
});

t.test('GET /v1/circles refuses bad paging parameters', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  for (const query of ['limit=0', 'limit=201', 'limit=abc']) {
    const res = await call(app, 'GET', `/v1/circles?${query}`, { token: owner.token });
    t.ok(isProblem(res, 400, 'invalid_request'), query);
    t.equal(res.body.errors[0].path, 'querystring/limit');
  }
  const forged = [
    'not-a-cursor',
    Buffer.from('[1]').toString('base64url'),
    Buffer.from('["x","y"]').toString('base64url'),
    Buffer.from('[1,"not-a-uuid"]').toString('base64url'),
    Buffer.from('[1e300,"00000000-0000-4000-8000-000000000000"]').toString('base64url'),
  ];
  for (const cursor of forged) {
    const res = await call(app, 'GET', `/v1/circles?cursor=${cursor}`, { token: owner.token });
    t.ok(isProblem(res, 400, 'invalid_cursor'), `${cursor}: ${res.status} ${JSON.stringify(res.body)}`);
  }
});

t.test('GET /v1/circles/:circleId: members see it, outsiders get 404', async (t) => {
  const { app } = await buildTestApp(t);
  const { owner, circle, admin, member, outsider } = await circleWithRoles(app, { joinPolicy: 'invite' });

  t.ok(isProblem(await call(app, 'GET', `/v1/circles/${circle.id}`), 401, 'missing_token'));

  const asOwner = await call(app, 'GET', `/v1/circles/${circle.id}`, { token: owner.token });
  t.equal(asOwner.status, 200);
  t.match(asOwner.body, { id: circle.id, role: 'owner', joinPolicy: 'invite', ownerId: owner.id });
  t.equal((await call(app, 'GET', `/v1/circles/${circle.id}`, { token: admin.token })).body.role, 'admin');
  const asMember = await call(app, 'GET', `/v1/circles/${circle.id}`, { token: member.token });
  t.equal(asMember.status, 200);
  t.equal(asMember.body.role, 'member');

  const asOutsider = await call(app, 'GET', `/v1/circles/${circle.id}`, { token: outsider.token });
  t.ok(isProblem(asOutsider, 404, 'circle_not_found'));
  const missing = await call(app, 'GET', '/v1/circles/00000000-0000-4000-8000-000000000000', { token: owner.token });
  t.ok(isProblem(missing, 404, 'circle_not_found'));
  t.same(asOutsider.body, missing.body, 'an outsider cannot tell an existing circle from a missing one');

  const badId = await call(app, 'GET', '/v1/circles/not-a-uuid', { token: owner.token });
  t.ok(isProblem(badId, 400, 'invalid_request'));
  t.equal(badId.body.errors[0].path, 'params/circleId');
});
