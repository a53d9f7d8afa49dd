import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import t from 'tap';
import { controlClock } from '../clock.js';
import { buildTestApp, call, flushPrefix, isProblem, registerUser, type TestUser } from '../helper.js';
import type { FastifyInstance } from 'fastify';
import { heldTransaction } from '../held-transaction.js';
import { backendPid, waitUntilBlockedBy } from '../lock-waits.js';

// Idempotency-Key on creating POSTs: replays, reuse with another body, concurrent duplicates,
// expiry and per-user scope. Checked on POST /v1/circles, whose route is marked idempotent.

const createCircle = (
  app: FastifyInstance,
  user: TestUser,
  key: string | undefined,
  body: unknown = { name: 'Readers', joinPolicy: 'open' },
) =>
  call(app, 'POST', '/v1/circles', {
    token: user.token,
    body,
    headers: key === undefined ? {} : { 'idempotency-key': key },
  });

t.test('a replay returns the first status and body, marked idempotent-replayed, and creates nothing', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);
  const first = await createCircle(app, user, 'key-1');
  t.equal(first.status, 201);
  t.notOk(first.headers['idempotent-replayed']);

  const replay = await createCircle(app, user, 'key-1');
  t.equal(replay.status, 201);
  t.same(replay.body, first.body, 'the same body, byte for byte the same circle');
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.match(replay.type, /^application\/json/);

  const circles = await db.selectFrom('circles').select('id').execute();
  t.same(circles, [{ id: first.body.id }], 'exactly one circle');
  const events = await db.selectFrom('events').select('type').execute();
  t.equal(events.length, 1, 'and one event');

  const without = await createCircle(app, user, undefined);
  t.equal(without.status, 201);
  t.not(without.body.id, first.body.id, 'without a key every POST creates');

  const row = await db.selectFrom('idempotency_keys').select(['user_id', 'key', 'response_status']).execute();
  t.same(row, [{ user_id: user.id, key: 'key-1', response_status: 201 }]);
});

t.test('an error answer is replayed too, so a retry sees the same outcome', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const member = await registerUser(app, 'member');
  const circle = await createCircle(app, owner, undefined);
  await call(app, 'POST', `/v1/circles/${circle.body.id}/members`, { token: member.token, body: {} });
  const url = `/v1/circles/${circle.body.id}/invites`;
  const denied = await call(app, 'POST', url, { token: member.token, body: {}, headers: { 'idempotency-key': 'inv' } });
  t.ok(isProblem(denied, 403, 'forbidden'));
  const again = await call(app, 'POST', url, { token: member.token, body: {}, headers: { 'idempotency-key': 'inv' } });
  t.ok(isProblem(again, 403, 'forbidden'), 'replayed as problem+json');
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal((await db.selectFrom('invites').select('code').execute()).length, 0);
});

t.test('the same key with a different body is 422 idempotency_key_reused', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);
  t.equal((await createCircle(app, user, 'k', { name: 'A', joinPolicy: 'open' })).status, 201);
  const reused = await createCircle(app, user, 'k', { name: 'B', joinPolicy: 'open' });
  t.ok(isProblem(reused, 422, 'idempotency_key_reused'));
  // A key belongs to the user, not to a route: sending it to another route is a reuse too.
  const circleId = (await createCircle(app, user, undefined)).body.id;
  const otherRoute = await call(app, 'POST', `/v1/circles/${circleId}/invites`, {
    token: user.token,
    body: {},
    headers: { 'idempotency-key': 'k' },
  });
  t.ok(isProblem(otherRoute, 422, 'idempotency_key_reused'));
  t.equal((await db.selectFrom('invites').select('code').execute()).length, 0);
  const circles = await db.selectFrom('circles').select('name').orderBy('created_at').execute();
  t.same(circles, [{ name: 'A' }, { name: 'Readers' }]);
});

t.test('concurrent duplicates create exactly one circle', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);
  for (let round = 0; round < 5; round++) {
    const results = await Promise.all([
      createCircle(app, user, `race-${round}`),
      createCircle(app, user, `race-${round}`),
    ]);
    const created = results.filter((r) => r.status === 201 && !r.headers['idempotent-replayed']);
    t.equal(created.length, 1, `round ${round}: one request did the work`);
    const other = results.find((r) => r !== created[0])!;
    const replayed =
      other.status === 201 && other.headers['idempotent-replayed'] === 'true' && other.body.id === created[0]!.body.id;
    t.ok(
      replayed || isProblem(other, 409, 'idempotency_request_in_progress'),
      `round ${round}: the other is a replay or 409 (${other.status})`,
    );
  }
  const count = await db.selectFrom('circles').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
  t.equal(count.n, 5);
});

t.test('a request still in progress answers 409; one abandoned before its change may be retried', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);
  // As if another process had taken the key and died before its change committed.
  const first = await createCircle(app, user, 'slow');
  await db.deleteFrom('circles').execute();
  await db
    .updateTable('idempotency_keys')
    .set({ response_status: null, response_type: null, response_body: null, applied_at: null })
    .execute();
  const busy = await createCircle(app, user, 'slow');
  t.ok(isProblem(busy, 409, 'idempotency_request_in_progress'));
  t.equal(busy.headers['idempotent-replayed'], undefined);

  // After 5 minutes the key is free again for the same request, and the retry does the work;
  // another request under the key is still the client's mistake.
  await sql`UPDATE idempotency_keys SET created_at = now() - interval '6 minutes'`.execute(db);
  const held = await db.selectFrom('idempotency_keys').selectAll().execute();
  const other = await createCircle(app, user, 'slow', { name: 'Writers', joinPolicy: 'open' });
  t.ok(isProblem(other, 422, 'idempotency_key_reused'), 'another body does not take the abandoned key over');
  t.same(await db.selectFrom('idempotency_keys').selectAll().execute(), held, 'and leaves it as it was');
  t.same(await db.selectFrom('circles').select('id').execute(), [], 'creating nothing');
  const retried = await createCircle(app, user, 'slow');
  t.equal(retried.status, 201);
  t.not(retried.body.id, first.body.id);
  t.same(await db.selectFrom('circles').select('id').execute(), [{ id: retried.body.id }]);
  const replay = await createCircle(app, user, 'slow');
  t.equal(replay.body.id, retried.body.id, "the retry's answer is now the one replayed");
});

t.test('a change that committed is never applied again, even when its response was lost', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);
  const first = await createCircle(app, user, 'crash');
  const key = await db.selectFrom('idempotency_keys').select(['applied_at', 'holder']).executeTakeFirstOrThrow();
  t.ok(key.applied_at, 'the change marked its key in its own transaction');
  t.ok(key.holder);
  // As if the process died after the commit and before it stored the response.
  await db
    .updateTable('idempotency_keys')
    .set({ response_status: null, response_type: null, response_body: null })
    .execute();
  t.ok(
    isProblem(await createCircle(app, user, 'crash'), 409, 'idempotency_request_in_progress'),
    'at first it may still be finishing',
  );

  await sql`UPDATE idempotency_keys SET created_at = now() - interval '6 minutes'`.execute(db);
  const retried = await createCircle(app, user, 'crash');
  t.ok(isProblem(retried, 409, 'idempotency_response_lost'), `not run again (${retried.status})`);
  t.notOk(retried.headers['idempotent-replayed']);
  t.same(await db.selectFrom('circles').select('id').execute(), [{ id: first.body.id }], 'still one circle');
  t.equal((await db.selectFrom('events').select('id').execute()).length, 1, 'and one event');

  // A day later the key has expired like any other and names a new request.
  await sql`UPDATE idempotency_keys SET created_at = now() - interval '25 hours'`.execute(db);
  t.equal((await createCircle(app, user, 'crash')).status, 201);
});

t.test('a request whose key was taken over while it ran rolls its change back', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);
  // Lock the circles table before the request starts: it takes its key (committed on its own) and
  // then stops at its circle's insert, inside its change and before the mark. Meanwhile a retry
  // takes the key over as abandoned (a new holder).
  let request!: ReturnType<typeof createCircle>;
  const held = await heldTransaction(db, async (trx) => {
    await sql`LOCK TABLE circles IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
    request = createCircle(app, user, 'overtaken');
    const blocked = await waitUntilBlockedBy(db, await backendPid(trx));
    t.match(blocked.query, /insert into "?circles"?/i, 'the request waits at its circle, inside its change');
    const taken = await trx
      .updateTable('idempotency_keys')
      .set({ holder: randomUUID(), created_at: sql`now() - interval '6 minutes'` })
      .executeTakeFirst();
    t.equal(taken.numUpdatedRows, 1n, 'the key was taken before the change began');
  });
  await held.commit();
  const answer = await request;
  t.ok(isProblem(answer, 409, 'idempotency_request_in_progress'), `the late request gives way (${answer.status})`);
  t.same(await db.selectFrom('circles').select('id').execute(), [], 'its circle rolled back');
  t.same(await db.selectFrom('events').select('id').execute(), [], 'and its event');
});

t.test('the same body with its keys in another order is the same request', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);
  const first = await createCircle(app, user, 'order', { name: 'Readers', joinPolicy: 'open', description: 'Books' });
  const reordered = await createCircle(app, user, 'order', {
    description: 'Books',
    joinPolicy: 'open',
    name: 'Readers',
  });
  t.equal(reordered.status, 201, `a replay, not 422 (${reordered.status})`);
  t.equal(reordered.headers['idempotent-replayed'], 'true');
  t.equal(reordered.body.id, first.body.id);
  t.equal((await db.selectFrom('circles').select('id').execute()).length, 1);
});

t.test('invalid keys are 400 invalid_idempotency_key', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);
  for (const key of ['x'.repeat(256), 'has space', 'tab\there', 'ünïcode']) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/circles',
      payload: { name: 'x', joinPolicy: 'open' },
      headers: {
        authorization: `Bearer ${user.token}`,
        'idempotency-key': encodeURI(key) === key ? key : Buffer.from(key, 'utf8').toString('latin1'),
      },
    });
    t.equal(res.statusCode, 400, JSON.stringify(key));
    t.equal(res.json().code, 'invalid_idempotency_key');
  }
  const empty = await createCircle(app, user, '');
  t.ok(isProblem(empty, 400, 'invalid_idempotency_key'));
  t.equal((await db.selectFrom('circles').select('id').execute()).length, 0);
  t.equal((await createCircle(app, user, 'x'.repeat(255))).status, 201, '255 visible characters is fine');
});

t.test('a key older than 24 hours has expired and may be used again', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app);
  const first = await createCircle(app, user, 'daily', { name: 'Monday', joinPolicy: 'open' });
  await sql`UPDATE idempotency_keys SET created_at = now() - interval '25 hours'`.execute(db);
  const second = await createCircle(app, user, 'daily', { name: 'Tuesday', joinPolicy: 'open' });
  t.equal(second.status, 201);
  t.notOk(second.headers['idempotent-replayed']);
  t.not(second.body.id, first.body.id);
  const replay = await createCircle(app, user, 'daily', { name: 'Tuesday', joinPolicy: 'open' });
  t.equal(replay.body.id, second.body.id, 'the new use is now the one replayed');
  t.equal((await db.selectFrom('circles').select('id').execute()).length, 2);
});

t.test('keys are per user: the same key from another user is their own request', async (t) => {
  const { app, db } = await buildTestApp(t);
  const [ann, bob] = [await registerUser(app, 'ann'), await registerUser(app, 'bob')];
  const mine = await createCircle(app, ann, 'shared-key');
  const theirs = await createCircle(app, bob, 'shared-key', { name: 'Other', joinPolicy: 'invite' });
  t.equal(theirs.status, 201, 'not a 422 for a different body');
  t.notOk(theirs.headers['idempotent-replayed']);
  t.equal(theirs.body.ownerId, bob.id, "never another user's response");
  const bobAgain = await createCircle(app, bob, 'shared-key', { name: 'Readers', joinPolicy: 'open' });
  t.ok(isProblem(bobAgain, 422, 'idempotency_key_reused'));
  t.not(mine.body.id, theirs.body.id);
  t.equal((await db.selectFrom('idempotency_keys').select('user_id').execute()).length, 2);
});

t.test('a rate-limited request does not use up its key, and replays are rate limited', async (t) => {
  const { app, config } = await buildTestApp(t, { RATE_LIMIT_MAX: '2' });
  const user = await registerUser(app);
  t.equal((await createCircle(app, user, 'first')).status, 201);
  t.equal((await createCircle(app, user, 'first')).headers['idempotent-replayed'], 'true');
  const limitedReplay = await createCircle(app, user, 'first');
  t.ok(isProblem(limitedReplay, 429, 'rate_limited'), 'a replay costs a request like any other');
  const limited = await createCircle(app, user, 'second');
  t.ok(isProblem(limited, 429, 'rate_limited'));

  // A new minute, on the API's clock and in Redis, once the API has sent its counts and taken in
  // Redis's answer (so no sync in flight brings them back into the new window). The count is read
  // on the store's own connection: its answer arrives after the sync's, and one more turn of the
  // event loop runs the store's callbacks for it.
  const redis = app.rateLimitRedis!;
  const counted = `${config.queuePrefix}:rate:u:${user.id}`;
  for (const deadline = performance.now() + 5_000; (await redis.get(counted)) !== '4'; ) {
    if (performance.now() > deadline) throw new Error(`the API never sent its counts: ${await redis.get(counted)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => setImmediate(resolve));
  controlClock(t).advance(60_000);
  await flushPrefix(`${config.queuePrefix}:rate`);
  const retry = await createCircle(app, user, 'second');
  t.equal(retry.status, 201, 'the retry after the limit is processed, not a replayed 429');
  t.notOk(retry.headers['idempotent-replayed']);
});
