import t from 'tap';
import { sql } from 'kysely';
import { skewHostClock } from '../clock.js';
import { buildTestApp, call, createCircle, isProblem, registerUser, type Reply } from '../helper.js';
import { circleWithRoles } from '../marketplace-helpers.js';
import { rowCounts } from '../hostile/world.js';

// Invite codes and joining: who may invite, what a code allows, and every way a join can fail.

t.test('POST /invites: owner and admin 201, member 403, outsider 404, anonymous 401', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, circle, admin, member, outsider } = await circleWithRoles(app, { joinPolicy: 'invite' });
  const url = `/v1/circles/${circle.id}/invites`;

  t.ok(isProblem(await call(app, 'POST', url, { body: {} }), 401, 'missing_token'));
  t.ok(isProblem(await call(app, 'POST', url, { token: outsider.token, body: {} }), 404, 'circle_not_found'));
  t.ok(isProblem(await call(app, 'POST', url, { token: member.token, body: {} }), 403, 'forbidden'));

  const before = Date.now();
  const byOwner = await call(app, 'POST', url, { token: owner.token, body: {} });
  t.equal(byOwner.status, 201);
  t.type(byOwner.body.code, 'string');
  t.ok(byOwner.body.code.length >= 20, 'codes are long enough not to be guessed');
  t.equal(byOwner.body.maxUses, null, 'unlimited by default');
  const week = Date.parse(byOwner.body.expiresAt) - before;
  t.ok(week >= 7 * 86400_000 - 5_000 && week <= 7 * 86400_000 + 5_000, 'valid for 7 days by default');

  const byAdmin = await call(app, 'POST', url, { token: admin.token, body: { expiresInSeconds: 3600, maxUses: 2 } });
  t.equal(byAdmin.status, 201);
  t.equal(byAdmin.body.maxUses, 2);
  const hour = Date.parse(byAdmin.body.expiresAt) - before;
  t.ok(hour >= 3600_000 - 5_000 && hour <= 3600_000 + 5_000, 'expiresInSeconds sets the expiry');

  const noBody = await call(app, 'POST', url, { token: owner.token });
  t.equal(noBody.status, 201, 'the body is optional');

  const rows = await db
    .selectFrom('invites')
    .select(['code', 'created_by', 'max_uses', 'uses'])
    .where('circle_id', '=', circle.id)
    .orderBy('created_at')
    .execute();
  // addMember created two invites before these three.
  t.equal(rows.length, 5);
  t.match(rows[3], { code: byAdmin.body.code, created_by: admin.id, max_uses: 2, uses: 0 });
});

t.test('POST /invites refuses out-of-range and mistyped options', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner, 'invite');
  const url = `/v1/circles/${circle.id}/invites`;
  const cases: [unknown, string][] = [
    [{ expiresInSeconds: 59 }, 'body/expiresInSeconds'],
    [{ expiresInSeconds: 90 * 86400 + 1 }, 'body/expiresInSeconds'],
    [{ expiresInSeconds: '3600' }, 'body/expiresInSeconds'],
    [{ maxUses: 0 }, 'body/maxUses'],
    [{ maxUses: 1.5 }, 'body/maxUses'],
    [{ code: 'my-own-code' }, 'body/code'],
  ];
  for (const [body, path] of cases) {
    const res = await call(app, 'POST', url, { token: owner.token, body });
    t.ok(isProblem(res, 400, 'invalid_request'), JSON.stringify(body));
    t.equal(res.body.errors?.[0]?.path, path, JSON.stringify(res.body.errors));
  }
  t.equal((await db.selectFrom('invites').select('code').execute()).length, 0);
});

t.test('joining: open circles need no code; invite circles need a valid one', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const open = await createCircle(app, owner, 'open');
  const closed = await createCircle(app, owner, 'invite');
  const other = await createCircle(app, owner, 'invite');
  const user = await registerUser(app, 'joiner');

  t.ok(isProblem(await call(app, 'POST', `/v1/circles/${open.id}/members`, { body: {} }), 401, 'missing_token'));

  const joined = await call(app, 'POST', `/v1/circles/${open.id}/members`, { token: user.token, body: {} });
  t.equal(joined.status, 201);
  t.match(joined.body, { circleId: open.id, userId: user.id, handle: user.handle, role: 'member' });
  t.same(Object.keys(joined.body).sort(), ['circleId', 'displayName', 'handle', 'joinedAt', 'role', 'userId']);

  const again = await call(app, 'POST', `/v1/circles/${open.id}/members`, { token: user.token });
  t.ok(isProblem(again, 409, 'already_member'));

  const noCode = await call(app, 'POST', `/v1/circles/${closed.id}/members`, { token: user.token, body: {} });
  t.ok(isProblem(noCode, 404, 'circle_not_found'), 'an invite-only circle stays hidden without a code');

  const badCode = await call(app, 'POST', `/v1/circles/${closed.id}/members`, {
    token: user.token,
    body: { inviteCode: 'nope' },
  });
  t.ok(isProblem(badCode, 404, 'circle_not_found'), 'a made-up code: the outsider’s answer');

  // A real code, but for another circle.
  const otherInvite = await call(app, 'POST', `/v1/circles/${other.id}/invites`, { token: owner.token, body: {} });
  const wrongCircle = await call(app, 'POST', `/v1/circles/${closed.id}/members`, {
    token: user.token,
    body: { inviteCode: otherInvite.body.code },
  });
  t.ok(isProblem(wrongCircle, 404, 'circle_not_found'), 'another circle’s code: the outsider’s answer');

  const missing = await call(app, 'POST', '/v1/circles/00000000-0000-4000-8000-000000000000/members', {
    token: user.token,
    body: {},
  });
  t.ok(isProblem(missing, 404, 'circle_not_found'));

  const invite = await call(app, 'POST', `/v1/circles/${closed.id}/invites`, { token: owner.token, body: {} });
  const withCode = await call(app, 'POST', `/v1/circles/${closed.id}/members`, {
    token: user.token,
    body: { inviteCode: invite.body.code },
  });
  t.equal(withCode.status, 201);
  t.equal(withCode.body.role, 'member');

  const events = await db
    .selectFrom('events')
    .select(['circle_id', 'subject_id', 'actor_id'])
    .where('type', '=', 'member.joined')
    .orderBy('id')
    .execute();
  t.same(
    events,
    [
      { circle_id: open.id, subject_id: user.id, actor_id: user.id },
      { circle_id: closed.id, subject_id: user.id, actor_id: user.id },
    ],
    'one member.joined event per successful join, none for failures',
  );
  const uses = await db
    .selectFrom('invites')
    .select('uses')
    .where('code', '=', invite.body.code)
    .executeTakeFirstOrThrow();
  t.equal(uses.uses, 1);
});

t.test('invite limits: maxUses runs out, expiry ends it, failed joins spend nothing', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner, 'invite');
  const url = `/v1/circles/${circle.id}/members`;

  const limited = await call(app, 'POST', `/v1/circles/${circle.id}/invites`, {
    token: owner.token,
    body: { maxUses: 2 },
  });
  const a = await registerUser(app, 'a');
  const b = await registerUser(app, 'b');
  const c = await registerUser(app, 'c');
  t.equal((await call(app, 'POST', url, { token: a.token, body: { inviteCode: limited.body.code } })).status, 201);
  // Already a member: refused, and the invite keeps its remaining use.
  const dup = await call(app, 'POST', url, { token: a.token, body: { inviteCode: limited.body.code } });
  t.ok(isProblem(dup, 409, 'already_member'));
  t.equal((await call(app, 'POST', url, { token: b.token, body: { inviteCode: limited.body.code } })).status, 201);
  const usedUp = await call(app, 'POST', url, { token: c.token, body: { inviteCode: limited.body.code } });
  t.ok(isProblem(usedUp, 409, 'invite_used_up'));
  const row = await db
    .selectFrom('invites')
    .select(['uses', 'max_uses'])
    .where('code', '=', limited.body.code)
    .executeTakeFirstOrThrow();
  t.same(row, { uses: 2, max_uses: 2 });

  const expiring = await call(app, 'POST', `/v1/circles/${circle.id}/invites`, {
    token: owner.token,
    body: { expiresInSeconds: 60 },
  });
  await db
    .updateTable('invites')
    .set({ expires_at: new Date(Date.now() - 1000) })
    .where('code', '=', expiring.body.code)
    .execute();
  const expired = await call(app, 'POST', url, { token: c.token, body: { inviteCode: expiring.body.code } });
  t.ok(isProblem(expired, 409, 'invite_expired'));

  const member = await db
    .selectFrom('memberships')
    .select('user_id')
    .where('circle_id', '=', circle.id)
    .where('user_id', '=', c.id)
    .executeTakeFirst();
  t.equal(member, undefined, 'c never became a member');
});

t.test('a single-use invite admits exactly one of two concurrent joiners', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner, 'invite');
  const invite = await call(app, 'POST', `/v1/circles/${circle.id}/invites`, {
    token: owner.token,
    body: { maxUses: 1 },
  });
  const [a, b] = [await registerUser(app, 'a'), await registerUser(app, 'b')];
  const results = await Promise.all(
    [a, b].map((u) =>
      call(app, 'POST', `/v1/circles/${circle.id}/members`, { token: u.token, body: { inviteCode: invite.body.code } }),
    ),
  );
  t.same(results.map((r) => r.status).sort(), [201, 409]);
  t.ok(results.some((r) => isProblem(r, 409, 'invite_used_up')));
  const members = await db
    .selectFrom('memberships')
    .select('user_id')
    .where('circle_id', '=', circle.id)
    .where('role', '=', 'member')
    .execute();
  t.equal(members.length, 1);
});

t.test('a member who left can join again', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner, 'open');
  const user = await registerUser(app, 'user');
  const first = await call(app, 'POST', `/v1/circles/${circle.id}/members`, { token: user.token, body: {} });
  t.equal(first.status, 201);
  t.equal(
    (await call(app, 'DELETE', `/v1/circles/${circle.id}/members/${user.id}`, { token: user.token })).status,
    204,
  );
  t.ok(
    isProblem(await call(app, 'GET', `/v1/circles/${circle.id}`, { token: user.token }), 404, 'circle_not_found'),
    'gone after leaving',
  );

  const back = await call(app, 'POST', `/v1/circles/${circle.id}/members`, { token: user.token, body: {} });
  t.equal(back.status, 201);
  t.equal(back.body.role, 'member');
  t.ok(Date.parse(back.body.joinedAt) >= Date.parse(first.body.joinedAt), 'joinedAt is the new join');
  t.equal((await call(app, 'GET', `/v1/circles/${circle.id}`, { token: user.token })).status, 200);

  const rows = await db
    .selectFrom('memberships')
    .select(['role', 'left_at'])
    .where('circle_id', '=', circle.id)
    .where('user_id', '=', user.id)
    .execute();
  t.same(rows, [{ role: 'member', left_at: null }], 'one membership row, active again');
  const types = await db.selectFrom('events').select('type').where('circle_id', '=', circle.id).orderBy('id').execute();
  t.same(
    types.map((e) => e.type),
    ['circle.created', 'member.joined', 'member.left', 'member.joined'],
  );
});

t.test('an invite-only circle is told from none only by its own codes; members are told they are in', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const closed = await createCircle(app, owner, 'invite');
  const other = await createCircle(app, owner, 'invite');
  const open = await createCircle(app, owner, 'open');
  const outsider = await registerUser(app, 'outsider');
  const otherCode = (await call(app, 'POST', `/v1/circles/${other.id}/invites`, { token: owner.token, body: {} })).body
    .code;
  /** The raw answer to a join: every byte a client could tell circles apart by. */
  const join = async (circleId: string, token: string, body: unknown) => {
    const res = await app.inject({
      method: 'POST',
      url: `/v1/circles/${circleId}/members`,
      headers: { authorization: `Bearer ${token}` },
      payload: body as object,
    });
    return {
      status: res.statusCode,
      type: res.headers['content-type'],
      length: res.headers['content-length'],
      body: res.body,
    };
  };
  const unknownCircle = '00000000-0000-4000-8000-000000000000';
  const counts = await rowCounts(db);
  const nowhere = await join(unknownCircle, outsider.token, { inviteCode: 'made-up-code' });
  t.equal(nowhere.status, 404);
  t.equal(JSON.parse(nowhere.body).code, 'circle_not_found');
  for (const [what, circleId, body] of [
    ['an unknown circle, no code', unknownCircle, {}],
    ['an unknown circle, another circle’s code', unknownCircle, { inviteCode: otherCode }],
    ['the invite-only circle, no code', closed.id, {}],
    ['the invite-only circle, a made-up code', closed.id, { inviteCode: 'made-up-code' }],
    ['the invite-only circle, another circle’s code', closed.id, { inviteCode: otherCode }],
  ] as const)
    t.same(await join(circleId, outsider.token, body), nowhere, what);
  t.same(await rowCounts(db), counts, 'nothing written, no invite spent');
  // An open circle hides nothing from joiners: a code it never issued is named as such.
  const openBad = await call(app, 'POST', `/v1/circles/${open.id}/members`, {
    token: outsider.token,
    body: { inviteCode: 'made-up-code' },
  });
  t.ok(isProblem(openBad, 404, 'invite_not_found'));

  // Current members (any role) asking to join: 409 already_member, with or without a code, and
  // a valid code is not spent.
  const code = (await call(app, 'POST', `/v1/circles/${closed.id}/invites`, { token: owner.token, body: {} })).body
    .code;
  const member = await registerUser(app, 'member');
  t.equal((await join(closed.id, member.token, { inviteCode: code })).status, 201);
  const before = await rowCounts(db);
  for (const [who, body] of [
    [member, {}],
    [member, { inviteCode: 'made-up-code' }],
    [member, { inviteCode: code }],
    [member, { inviteCode: otherCode }],
    [owner, {}],
  ] as const) {
    const res = await call(app, 'POST', `/v1/circles/${closed.id}/members`, { token: who.token, body });
    t.ok(isProblem(res, 409, 'already_member'), `${JSON.stringify(body)}: ${res.status} ${res.body.code}`);
  }
  t.same(await rowCounts(db), before, 'members asking again change nothing');
  const uses = await db.selectFrom('invites').select('uses').where('code', '=', code).executeTakeFirstOrThrow();
  t.equal(uses.uses, 1, 'only the join that admitted the member spent a use');
});

t.test('an invite lives as long as asked by the database clock, whatever the API host says', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner, 'invite');
  const joiner = await registerUser(app, 'joiner');
  // The invite is made on a host whose clock runs two minutes behind the database's, for a
  // minute: by the host's reckoning it would have expired before it was made.
  const realNow = Date.now;
  Date.now = () => realNow() - 120_000;
  skewHostClock(t, -120_000);
  let invite: Reply;
  try {
    invite = await call(app, 'POST', `/v1/circles/${circle.id}/invites`, {
      token: owner.token,
      body: { expiresInSeconds: 60 },
    });
  } finally {
    Date.now = realNow;
  }
  t.equal(invite.status, 201);
  const { rows } = await sql<{ ttl: number }>`
    SELECT extract(epoch FROM expires_at - created_at)::int AS ttl FROM invites WHERE code = ${invite.body.code}`.execute(
    db,
  );
  t.same(rows, [{ ttl: 60 }], 'a minute after it was made, by the database clock');
  const joined = await call(app, 'POST', `/v1/circles/${circle.id}/members`, {
    token: joiner.token,
    body: { inviteCode: invite.body.code },
  });
  t.equal(joined.status, 201, 'and it admits within that minute');
});
