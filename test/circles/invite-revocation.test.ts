import t from 'tap';
import { buildTestApp, call, isProblem, registerUser } from '../helper.js';
import { circleWithRoles } from '../marketplace-helpers.js';

// GET /v1/circles/:circleId/invites and DELETE .../invites/:code: managers see and revoke invites;
// a revoked invite admits nobody.

t.test('managers list the invites, newest first, paged; others are refused', async (t) => {
  const { app } = await buildTestApp(t);
  const { owner, admin, circle, member, outsider } = await circleWithRoles(app, { joinPolicy: 'invite' });
  const url = `/v1/circles/${circle.id}/invites`;
  const before = (await call(app, 'GET', url, { token: owner.token })).body.items.length;
  const made: string[] = [];
  for (let i = 0; i < 3; i++) {
    made.push((await call(app, 'POST', url, { token: admin.token, body: { maxUses: i + 1 } })).body.code);
  }
  const all = await call(app, 'GET', url, { token: owner.token });
  t.equal(all.status, 200);
  t.equal(all.body.items.length, before + 3);
  t.same(
    all.body.items.slice(0, 3).map((i: { code: string }) => i.code),
    [...made].reverse(),
    'newest first',
  );
  t.match(all.body.items[0], { maxUses: 3, uses: 0, createdBy: admin.id, expiresAt: String, createdAt: String });

  const first = await call(app, 'GET', `${url}?limit=2`, { token: admin.token });
  const rest = await call(app, 'GET', `${url}?limit=200&cursor=${first.body.nextCursor}`, { token: admin.token });
  t.same(
    [...first.body.items, ...rest.body.items].map((i: { code: string }) => i.code),
    all.body.items.map((i: { code: string }) => i.code),
    'pages add up to the list',
  );
  t.equal(rest.body.nextCursor, null);

  t.ok(isProblem(await call(app, 'GET', url, { token: member.token }), 403, 'forbidden'));
  t.ok(isProblem(await call(app, 'GET', url, { token: outsider.token }), 404, 'circle_not_found'));
  t.ok(isProblem(await call(app, 'GET', url), 401, 'missing_token'));
});

t.test('a revoked invite admits nobody and leaves the list; revoking is for managers', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, admin, circle, member, outsider } = await circleWithRoles(app, { joinPolicy: 'invite' });
  const url = `/v1/circles/${circle.id}/invites`;
  const code = (await call(app, 'POST', url, { token: owner.token, body: {} })).body.code as string;
  const kept = (await call(app, 'POST', url, { token: owner.token, body: {} })).body.code as string;

  t.ok(isProblem(await call(app, 'DELETE', `${url}/${code}`, { token: member.token }), 403, 'forbidden'));
  t.ok(isProblem(await call(app, 'DELETE', `${url}/${code}`, { token: outsider.token }), 404, 'circle_not_found'));
  t.ok(isProblem(await call(app, 'DELETE', `${url}/nope`, { token: owner.token }), 404, 'invite_not_found'));

  const revoked = await call(app, 'DELETE', `${url}/${encodeURIComponent(code)}`, { token: admin.token });
  t.equal(revoked.status, 204);
  t.equal(
    (await call(app, 'DELETE', `${url}/${encodeURIComponent(code)}`, { token: owner.token })).status,
    204,
    'again: the same answer',
  );
  const codes = (await call(app, 'GET', url, { token: owner.token })).body.items.map((i: { code: string }) => i.code);
  t.notOk(codes.includes(code), 'gone from the list');
  t.ok(codes.includes(kept), 'the others stay');

  const newcomer = await registerUser(app, 'newcomer');
  const join = (inviteCode: string) =>
    call(app, 'POST', `/v1/circles/${circle.id}/members`, { token: newcomer.token, body: { inviteCode } });
  t.ok(isProblem(await join(code), 409, 'invite_revoked'), 'the revoked code admits nobody');
  t.equal((await join(kept)).status, 201, 'another code still works');

  const events = await db
    .selectFrom('events')
    .select(['type', 'actor_id', 'payload'])
    .where('circle_id', '=', circle.id)
    .where('type', '=', 'invite.revoked')
    .execute();
  t.equal(events.length, 1, 'one event, for the one revocation');
  t.equal(events[0]!.actor_id, admin.id);
  t.notOk(JSON.stringify(events[0]!.payload).includes(code), 'the code stays out of the activity feed');
});

t.test('creating an invite writes invite.created, without the code; members read it in the feed', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, admin, circle, member } = await circleWithRoles(app, { joinPolicy: 'invite' });
  const url = `/v1/circles/${circle.id}/invites`;
  const createdEvents = () =>
    db
      .selectFrom('events')
      .select(['type', 'actor_id', 'subject_id', 'recipient_id', 'payload'])
      .where('circle_id', '=', circle.id)
      .where('type', '=', 'invite.created')
      .orderBy('id')
      .execute();
  const before = (await createdEvents()).length;
  const made = await call(app, 'POST', url, { token: admin.token, body: { expiresInSeconds: 3600, maxUses: 3 } });
  t.equal(made.status, 201);
  const events = (await createdEvents()).slice(before);
  t.same(events, [
    {
      type: 'invite.created',
      actor_id: admin.id,
      subject_id: null,
      recipient_id: null,
      payload: { expiresAt: made.body.expiresAt, maxUses: 3 },
    },
  ]);
  t.notOk(JSON.stringify(events).includes(made.body.code), 'the code stays out of the event');

  // Refused attempts write nothing.
  t.ok(isProblem(await call(app, 'POST', url, { token: member.token, body: {} }), 403, 'forbidden'));
  t.equal((await createdEvents()).length, before + 1);

  const feed = await call(app, 'GET', `/v1/circles/${circle.id}/events?types=invite.created`, { token: member.token });
  t.equal(feed.status, 200);
  t.same(feed.body.items[0].summary, `${admin.handle} created an invite`);
  t.notOk(JSON.stringify(feed.body).includes(made.body.code), 'nor in the feed');
  const unlimited = await call(app, 'POST', url, { token: owner.token, body: {} });
  t.same((await createdEvents()).at(-1)?.payload, { expiresAt: unlimited.body.expiresAt, maxUses: null });
});
