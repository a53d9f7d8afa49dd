import t from 'tap';
import { addMember, buildTestApp, call, createCircle, isProblem, registerUser, type Reply } from '../helper.js';
import { circleWithRoles } from '../marketplace-helpers.js';

// Membership management: listing members, changing roles, transferring ownership, removal and leaving.

t.test('GET /members: members see the list, outsiders 404, anonymous 401', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const member = await addMember(app, owner, circle.id);
  const outsider = await registerUser(app, 'outsider');
  const url = `/v1/circles/${circle.id}/members`;

  t.ok(isProblem(await call(app, 'GET', url), 401, 'missing_token'));
  t.ok(isProblem(await call(app, 'GET', url, { token: outsider.token }), 404, 'circle_not_found'));
  for (const user of [owner, member]) {
    const res = await call(app, 'GET', url, { token: user.token });
    t.equal(res.status, 200);
    t.same(
      res.body.items.map((m: { userId: string; role: string }) => [m.userId, m.role]),
      [
        [owner.id, 'owner'],
        [member.id, 'member'],
      ],
    );
    t.equal(res.body.nextCursor, null);
  }
});

t.test('GET /members pages through ties in joinedAt without duplicates or gaps', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const ids = [owner.id];
  for (let i = 0; i < 6; i++) ids.push((await addMember(app, owner, circle.id)).id);
  // Several members joining in the same microsecond is the hard case for a keyset cursor.
  await db
    .updateTable('memberships')
    .set({ joined_at: new Date('2026-01-01T00:00:00.123Z') })
    .where('circle_id', '=', circle.id)
    .where('role', '=', 'member')
    .execute();

  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: Reply = await call(
      app,
      'GET',
      `/v1/circles/${circle.id}/members?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      { token: owner.token },
    );
    t.equal(page.status, 200);
    seen.push(...page.body.items.map((m: { userId: string }) => m.userId));
    cursor = page.body.nextCursor;
    pages++;
  } while (cursor && pages < 10);
  t.equal(pages, 4);
  t.equal(seen.length, 7);
  t.equal(new Set(seen).size, 7, 'no member served twice');
  t.same([...seen].sort(), [...ids].sort(), 'every member served');
  const tied = ids.slice(1).sort();
  t.same(seen.slice(0, 6), tied, 'the tied members come in user id order, before the owner who joined later');

  const forged = await call(
    app,
    'GET',
    `/v1/circles/${circle.id}/members?cursor=${Buffer.from('["x",1]').toString('base64url')}`,
    { token: owner.token },
  );
  t.ok(isProblem(forged, 400, 'invalid_cursor'));
});

t.test('PATCH /members/:userId: only the owner changes roles', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, circle, admin, member, outsider } = await circleWithRoles(app);
  const url = `/v1/circles/${circle.id}/members/${member.id}`;

  t.ok(isProblem(await call(app, 'PATCH', url, { body: { role: 'admin' } }), 401, 'missing_token'));
  t.ok(
    isProblem(
      await call(app, 'PATCH', url, { token: outsider.token, body: { role: 'admin' } }),
      404,
      'circle_not_found',
    ),
  );
  t.ok(isProblem(await call(app, 'PATCH', url, { token: member.token, body: { role: 'admin' } }), 403, 'forbidden'));
  t.ok(
    isProblem(await call(app, 'PATCH', url, { token: admin.token, body: { role: 'admin' } }), 403, 'forbidden'),
    'admins cannot change roles',
  );
  t.ok(
    isProblem(await call(app, 'PATCH', url, { token: owner.token, body: { role: 'boss' } }), 400, 'invalid_request'),
  );
  t.ok(isProblem(await call(app, 'PATCH', url, { token: owner.token, body: {} }), 400, 'invalid_request'));
  t.ok(
    isProblem(
      await call(app, 'PATCH', `/v1/circles/${circle.id}/members/${outsider.id}`, {
        token: owner.token,
        body: { role: 'admin' },
      }),
      404,
      'member_not_found',
    ),
  );

  const promoted = await call(app, 'PATCH', url, { token: owner.token, body: { role: 'admin' } });
  t.equal(promoted.status, 200);
  t.match(promoted.body, { circleId: circle.id, userId: member.id, role: 'admin' });
  const demoted = await call(app, 'PATCH', url, { token: owner.token, body: { role: 'member' } });
  t.equal(demoted.body.role, 'member');
  const same = await call(app, 'PATCH', url, { token: owner.token, body: { role: 'member' } });
  t.equal(same.status, 200, 'setting the current role is a no-op');

  const events = await db
    .selectFrom('events')
    .select(['subject_id', 'actor_id', 'payload'])
    .where('type', '=', 'member.role_changed')
    .where('subject_id', '=', member.id)
    .orderBy('id')
    .execute();
  t.same(
    events,
    [
      { subject_id: member.id, actor_id: owner.id, payload: { from: 'member', to: 'admin' } },
      { subject_id: member.id, actor_id: owner.id, payload: { from: 'admin', to: 'member' } },
    ],
    'one event per actual change',
  );
});

t.test('ownership transfer keeps exactly one owner', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const member = await addMember(app, owner, circle.id);

  const self = await call(app, 'PATCH', `/v1/circles/${circle.id}/members/${owner.id}`, {
    token: owner.token,
    body: { role: 'admin' },
  });
  t.ok(isProblem(self, 409, 'owner_required'), 'the owner cannot demote themself');
  const selfOwner = await call(app, 'PATCH', `/v1/circles/${circle.id}/members/${owner.id}`, {
    token: owner.token,
    body: { role: 'owner' },
  });
  t.equal(selfOwner.status, 200, 'staying owner is a no-op');

  const transfer = await call(app, 'PATCH', `/v1/circles/${circle.id}/members/${member.id}`, {
    token: owner.token,
    body: { role: 'owner' },
  });
  t.equal(transfer.status, 200);
  t.equal(transfer.body.role, 'owner');

  const roles = await db
    .selectFrom('memberships')
    .select(['user_id', 'role'])
    .where('circle_id', '=', circle.id)
    .where('left_at', 'is', null)
    .execute();
  t.same(
    roles.filter((r) => r.role === 'owner'),
    [{ user_id: member.id, role: 'owner' }],
    'exactly one owner: the new one',
  );
  t.same(roles.find((r) => r.user_id === owner.id)?.role, 'admin', 'the previous owner becomes an admin');
  const row = await db.selectFrom('circles').select('owner_id').where('id', '=', circle.id).executeTakeFirstOrThrow();
  t.equal(row.owner_id, member.id);
  t.equal((await call(app, 'GET', `/v1/circles/${circle.id}`, { token: member.token })).body.ownerId, member.id);

  // Both roles changed, so both have their event, written in the one transaction of the transfer.
  const changes = await db
    .selectFrom('events')
    .select(['subject_id', 'actor_id', 'payload', 'xact_id'])
    .where('type', '=', 'member.role_changed')
    .where('circle_id', '=', circle.id)
    .orderBy('id')
    .execute();
  t.same(
    changes.map(({ xact_id, ...e }) => e),
    [
      { subject_id: member.id, actor_id: owner.id, payload: { from: 'member', to: 'owner' } },
      { subject_id: owner.id, actor_id: owner.id, payload: { from: 'owner', to: 'admin', newOwnerId: member.id } },
    ],
    'the new owner and the former owner',
  );
  t.equal(changes[0]!.xact_id, changes[1]!.xact_id, 'one transaction');
  const feed = await call(app, 'GET', `/v1/circles/${circle.id}/events?types=member.role_changed`, {
    token: member.token,
  });
  t.same(
    feed.body.items.map((i: { summary: string }) => i.summary),
    [`${owner.handle} handed over ownership and is now admin`, `${owner.handle} made ${member.handle} owner`],
  );

  // The former owner is now an admin and has lost the owner's powers.
  const back = await call(app, 'PATCH', `/v1/circles/${circle.id}/members/${owner.id}`, {
    token: owner.token,
    body: { role: 'owner' },
  });
  t.ok(isProblem(back, 403, 'forbidden'));
});

t.test('DELETE /members/:userId: who may remove whom', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const admin = await addMember(app, owner, circle.id, 'admin');
  const admin2 = await addMember(app, owner, circle.id, 'admin');
  const member = await addMember(app, owner, circle.id);
  const member2 = await addMember(app, owner, circle.id);
  const member3 = await addMember(app, owner, circle.id);
  const outsider = await registerUser(app, 'outsider');
  const del = (actor: { token: string } | null, target: { id: string }) =>
    call(app, 'DELETE', `/v1/circles/${circle.id}/members/${target.id}`, actor ? { token: actor.token } : {});

  t.ok(isProblem(await del(null, member), 401, 'missing_token'));
  t.ok(isProblem(await del(outsider, member), 404, 'circle_not_found'));
  t.ok(isProblem(await del(member, member2), 403, 'forbidden'), 'a member cannot remove another member');
  t.ok(isProblem(await del(member, admin), 403, 'forbidden'));
  t.ok(isProblem(await del(admin, admin2), 403, 'forbidden'), 'an admin cannot remove another admin');
  t.ok(isProblem(await del(admin, owner), 403, 'forbidden'), 'an admin cannot remove the owner');
  t.ok(isProblem(await del(owner, owner), 409, 'owner_cannot_leave'));
  t.ok(isProblem(await del(owner, outsider), 404, 'member_not_found'));

  const byAdmin = await del(admin, member);
  t.equal(byAdmin.status, 204);
  t.equal(byAdmin.body, null);
  t.ok(isProblem(await del(admin, member), 404, 'member_not_found'), 'already removed');
  t.equal((await del(member2, member2)).status, 204, 'anyone may leave');
  t.equal((await del(owner, admin2)).status, 204, 'the owner may remove an admin');
  t.equal((await del(admin, admin)).status, 204, 'an admin may leave');

  const removed = await call(app, 'GET', `/v1/circles/${circle.id}/members`, { token: member.token });
  t.ok(isProblem(removed, 404, 'circle_not_found'), 'a removed member is an outsider now');

  const left = await db
    .selectFrom('memberships')
    .select('user_id')
    .where('circle_id', '=', circle.id)
    .where('left_at', 'is not', null)
    .execute();
  t.same(left.map((r) => r.user_id).sort(), [member.id, member2.id, admin2.id, admin.id].sort());
  const current = await call(app, 'GET', `/v1/circles/${circle.id}/members`, { token: owner.token });
  t.same(current.body.items.map((m: { userId: string }) => m.userId).sort(), [owner.id, member3.id].sort());

  const events = await db
    .selectFrom('events')
    .select(['subject_id', 'actor_id', 'payload'])
    .where('type', '=', 'member.left')
    .orderBy('id')
    .execute();
  t.same(events, [
    { subject_id: member.id, actor_id: admin.id, payload: { removed: true } },
    { subject_id: member2.id, actor_id: member2.id, payload: { removed: false } },
    { subject_id: admin2.id, actor_id: owner.id, payload: { removed: true } },
    { subject_id: admin.id, actor_id: admin.id, payload: { removed: false } },
  ]);
});
