import t from 'tap';
import { buildTestApp, call, isProblem, registerUser } from '../helper.js';
import { circleWithRoles } from '../marketplace-helpers.js';
import { snapshot } from '../hostile/world.js';
import { WEBHOOK_EVENT_TYPES } from '../../src/webhooks/event-types.js';
import { deliveryCountsByOutcome } from '../../src/webhooks/webhooks.repository.js';
import { createWebhook, messagesOf, relay } from './webhook-helpers.js';
import { summarize } from '../../src/activity/summaries.js';

// Managing a circle's webhooks over HTTP: who may, what is checked, what is shown (the secret
// once), the events each change records, and pagination.

t.test('owners and admins manage webhooks; the secret is shown at creation only', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, admin, member, outsider, circle } = await circleWithRoles(app);
  const base = `/v1/circles/${circle.id}/webhooks`;
  const created = await call(app, 'POST', base, {
    token: admin.token,
    body: {
      url: 'https://hooks.example.com/circle?token=abc',
      events: ['task.completed', 'task.completed', 'claim.created'],
      description: 'CI',
    },
  });
  t.equal(created.status, 201);
  t.match(created.body, {
    circleId: circle.id,
    url: 'https://hooks.example.com/circle?token=abc',
    events: ['claim.created', 'task.completed'],
    description: 'CI',
    enabled: true,
    disabledAt: null,
    createdBy: admin.id,
  });
  t.match(created.body.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);

  const list = await call(app, 'GET', base, { token: owner.token });
  t.equal(list.status, 200);
  t.equal(list.body.items.length, 1);
  t.notOk('secret' in list.body.items[0], 'never listed with its secret');
  t.notMatch(JSON.stringify(list.body), /whsec_/);
  t.ok(isProblem(await call(app, 'GET', base, { token: member.token }), 403, 'forbidden'));
  t.ok(isProblem(await call(app, 'GET', base, { token: outsider.token }), 404, 'circle_not_found'));

  const id = created.body.id;
  const patched = await call(app, 'PATCH', `${base}/${id}`, {
    token: owner.token,
    body: { events: ['*', 'task.created'], url: 'https://hooks.example.com/v2' },
  });
  t.equal(patched.status, 200);
  t.match(patched.body, { events: ['*'], url: 'https://hooks.example.com/v2' });
  const unchanged = await call(app, 'PATCH', `${base}/${id}`, { token: owner.token, body: { events: ['*'] } });
  t.equal(unchanged.status, 200);
  const disabled = await call(app, 'PATCH', `${base}/${id}`, { token: owner.token, body: { enabled: false } });
  t.match(disabled.body, { enabled: false, disabledReason: 'manual' });
  t.equal((await call(app, 'DELETE', `${base}/${id}`, { token: member.token })).status, 403);
  t.equal((await call(app, 'DELETE', `${base}/${id}`, { token: owner.token })).status, 204);
  t.ok(isProblem(await call(app, 'DELETE', `${base}/${id}`, { token: owner.token }), 404, 'webhook_not_found'));

  const events = await db
    .selectFrom('events')
    .select(['type', 'actor_id', 'payload'])
    .where('type', 'like', 'webhook.%')
    .orderBy('id')
    .execute();
  t.same(
    events.map((e) => e.type),
    ['webhook.created', 'webhook.updated', 'webhook.disabled', 'webhook.deleted'],
    'one event per change; an edit that changes nothing records none',
  );
  t.same(events[0]!.payload, { origin: 'https://hooks.example.com', events: ['claim.created', 'task.completed'] });
  t.same(events[1]!.payload, { changed: ['url', 'events'], origin: 'https://hooks.example.com', events: ['*'] });
  t.notMatch(JSON.stringify(events), /whsec_|token=abc/, 'no secret and no URL path or query in events');
});

t.test('bad input is a 400 with a stable code and changes nothing', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, circle } = await circleWithRoles(app);
  const base = `/v1/circles/${circle.id}/webhooks`;
  const before = await snapshot(db);
  const cases: [unknown, string][] = [
    [{ url: 'https://example.com', events: ['task.completed', 'task.exploded'] }, 'unknown_event_type'],
    [{ url: 'https://example.com', events: ['payout.credited'] }, 'unknown_event_type'],
    [{ url: 'ftp://example.com', events: ['*'] }, 'invalid_webhook_url'],
    [{ url: 'https://user:pw@example.com', events: ['*'] }, 'invalid_webhook_url'],
    [{ url: 'nonsense', events: ['*'] }, 'invalid_webhook_url'],
    [{ url: 'http://192.168.0.10/', events: ['*'] }, 'webhook_url_not_allowed'],
    [{ url: 'https://example.com', events: [] }, 'invalid_request'],
    [{ url: 'https://example.com' }, 'invalid_request'],
  ];
  for (const [body, code] of cases) {
    const res = await call(app, 'POST', base, { token: owner.token, body });
    t.ok(isProblem(res, 400, code), `${JSON.stringify(body)}: ${res.status} ${res.body.code}`);
  }
  const unknown = await call(app, 'POST', base, {
    token: owner.token,
    body: { url: 'https://example.com', events: ['task.completed', 'task.exploded'] },
  });
  t.same(unknown.body.errors, [{ path: 'body/events/1', message: 'is not an event type webhooks can receive' }]);
  t.equal(await snapshot(db), before, 'nothing written');

  const hook = await createWebhook(app, owner, circle.id, { url: 'https://example.com', events: ['*'] });
  const mid = await snapshot(db);
  for (const [body, code] of [
    [{ events: ['nope'] }, 'unknown_event_type'],
    [{ url: 'http://[fd00::1]/' }, 'webhook_url_not_allowed'],
  ] as const) {
    const res = await call(app, 'PATCH', `${base}/${hook.id}`, { token: owner.token, body });
    t.ok(isProblem(res, 400, code), `${JSON.stringify(body)}: ${res.body.code}`);
  }
  t.ok(
    isProblem(
      await call(app, 'PATCH', `${base}/00000000-0000-4000-8000-000000000000`, { token: owner.token, body: {} }),
      404,
      'webhook_not_found',
    ),
  );
  t.equal(await snapshot(db), mid);
});

t.test('every offered type is accepted, and the list pages newest first', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const { circle } = await circleWithRoles(app);
  const res = await call(app, 'POST', `/v1/circles/${circle.id}/webhooks`, {
    token: owner.token,
    body: { url: 'https://example.com', events: ['*'] },
  });
  t.equal(res.status, 404, 'someone else’s circle');
  const { owner: o2, circle: c2 } = await circleWithRoles(app);
  const ids: string[] = [];
  for (let i = 0; i * 8 < WEBHOOK_EVENT_TYPES.length; i++) {
    const events = WEBHOOK_EVENT_TYPES.slice(i * 8, i * 8 + 8);
    ids.push((await createWebhook(app, o2, c2.id, { url: `https://example.com/${i}`, events: [...events] })).id);
  }
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { body: { items: { id: string }[]; nextCursor: string | null } } = await call(
      app,
      'GET',
      `/v1/circles/${c2.id}/webhooks?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      { token: o2.token },
    );
    seen.push(...page.body.items.map((w) => w.id));
    cursor = page.body.nextCursor;
  } while (cursor);
  t.same(seen, [...ids].reverse());
  t.ok(
    isProblem(
      await call(app, 'GET', `/v1/circles/${c2.id}/webhooks?cursor=bogus`, { token: o2.token }),
      400,
      'invalid_cursor',
    ),
  );
});

t.test('delivery counts by outcome, for the metrics', async (t) => {
  const { db } = await buildTestApp(t);
  t.same(await deliveryCountsByOutcome(db), { succeeded: 0, http_error: 0, timeout: 0, refused: 0, network_error: 0 });
});

t.test('webhook events read as sentences in the feed, without URL or secret', async (t) => {
  const facts = { actorHandle: 'ann', memberHandle: null, taskTitle: null, projectTitle: null };
  const said = (type: string, payload: Record<string, unknown> = {}) => summarize({ ...facts, type, payload });
  t.equal(said('webhook.created'), 'ann added a webhook');
  t.equal(said('webhook.updated'), 'ann changed a webhook');
  t.equal(said('webhook.deleted'), 'ann deleted a webhook');
  t.equal(said('webhook.enabled'), 'ann enabled a webhook');
  t.equal(said('webhook.disabled', { reason: 'manual' }), 'ann disabled a webhook');
  t.equal(
    said('webhook.disabled', { reason: 'failing', failedMessages: 5 }),
    'A webhook was disabled after 5 failed deliveries in a row',
  );
  t.equal(said('webhook.secret_rotated'), 'ann rotated a webhook’s signing secret');
  t.equal(said('webhook.redelivery_requested'), 'ann asked for a webhook delivery to be sent again');
});

t.test('invite.created and both sides of an ownership transfer reach subscribers; the code never does', async (t) => {
  const { app, db, config } = await buildTestApp(t);
  const { owner, admin, circle } = await circleWithRoles(app);
  const hook = await createWebhook(app, owner, circle.id, {
    url: 'https://hooks.example.com/members',
    events: ['invite.created', 'member.role_changed'],
  });
  const invite = await call(app, 'POST', `/v1/circles/${circle.id}/invites`, { token: admin.token, body: {} });
  t.equal(invite.status, 201);
  const transfer = await call(app, 'PATCH', `/v1/circles/${circle.id}/members/${admin.id}`, {
    token: owner.token,
    body: { role: 'owner' },
  });
  t.equal(transfer.status, 200);
  await relay(db, app.queues, config);
  const messages = await messagesOf(db, hook.id);
  t.same(
    messages.map((m) => m.event_type),
    ['invite.created', 'member.role_changed', 'member.role_changed'],
  );
  const data = messages.map((m) => JSON.parse(m.body).data);
  t.same(data[0].payload, { expiresAt: invite.body.expiresAt, maxUses: null });
  t.notOk(
    messages.some((m) => m.body.includes(invite.body.code)),
    'the invite code is in no message',
  );
  t.same(
    data.slice(1).map((d) => [d.subjectId, d.payload]),
    [
      [admin.id, { from: 'admin', to: 'owner' }],
      [owner.id, { from: 'owner', to: 'admin', newOwnerId: admin.id }],
    ],
  );
  const facts = { actorHandle: 'ann', memberHandle: 'ann', taskTitle: null, projectTitle: null };
  t.equal(summarize({ ...facts, type: 'invite.created', payload: {} }), 'ann created an invite');
});

t.test('webhook events reach the feed of owners and admins only', async (t) => {
  const { app } = await buildTestApp(t);
  const { owner, admin, member, circle } = await circleWithRoles(app);
  const created = await call(app, 'POST', `/v1/circles/${circle.id}/webhooks`, {
    token: admin.token,
    body: { url: 'https://ci.internal.example:8443/hook', events: ['task.completed'] },
  });
  t.equal(created.status, 201);
  const feed = async (token: string, query = '') => {
    const res = await call(app, 'GET', `/v1/circles/${circle.id}/events${query}`, { token });
    t.equal(res.status, 200);
    return (res.body.items as { type: string; data: unknown }[]).filter((e) => e.type.startsWith('webhook.'));
  };
  for (const manager of [owner, admin]) {
    t.match(
      await feed(manager.token),
      [{ type: 'webhook.created', data: { origin: 'https://ci.internal.example:8443', events: ['task.completed'] } }],
      'a manager sees which receiver was added',
    );
  }
  t.same(await feed(member.token), [], 'a member does not: the receiver is not theirs to know');
  t.same(await feed(member.token, '?types=webhook.created'), [], 'not even by asking for the type');
});
