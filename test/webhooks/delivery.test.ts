import t, { type Test } from 'tap';
import { sql } from 'kysely';
import type { Db } from '../../src/infra/postgres.js';
import { Webhook } from 'standardwebhooks';
import {
  buildTestApp,
  flushQueueStore,
  call,
  createCircle,
  isProblem,
  onEachQueueBackend,
  queueBackendEnv,
  registerUser,
} from '../helper.js';
import {
  createProject,
  failedRun,
  finishedJob,
  processorWorkers,
  saboteurWorker,
  waitFor,
} from '../marketplace-helpers.js';
import { assertInvariants } from '../settlement-helpers.js';
import { backendPid, waitUntilBlockedBy } from '../lock-waits.js';
import { deliveryCountsByOutcome, lockEndpoint } from '../../src/webhooks/webhooks.repository.js';
import {
  MAX_SWEEP_RETRIES as WEBHOOK_SWEEP_RETRIES,
  deliverAttempt,
  deliveryJobKey,
  disableEndpoint,
  requeueOverdueMessages,
} from '../../src/webhooks/webhook-delivery.job.js';
import { storedJobId } from '../../src/jobs/queues.js';
import {
  answer,
  attemptsOf,
  attemptsReach,
  createWebhook,
  messagesOf,
  messagesSettle,
  relay,
  startReceiver,
} from './webhook-helpers.js';

// Webhook delivery end to end, on real BullMQ workers and real HTTP receivers: signatures checked
// with the independent standardwebhooks package, retries with their attempt log, redelivery with
// the same webhook-id, secret rotation, auto-disable and manual re-enable. Events reach receivers
// through the outbox relay, run here by hand so each test decides when.

const env = (backend: 'redis' | 'postgres', extra: Record<string, string> = {}) => ({
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_RETRY_BASE_MS: '20',
  WEBHOOK_MAX_ATTEMPTS: '5',
  ...queueBackendEnv(backend),
  ...extra,
});

/** Ends the grace of every secret the endpoint's rotations retired, as a day passing would. */
const expireRetiredSecrets = (db: Db, endpointId: string) =>
  sql`
    UPDATE webhook_endpoints
    SET retired_secrets = (
      SELECT coalesce(jsonb_agg(r || jsonb_build_object('expiresAt', now() - interval '1 second')), '[]'::jsonb)
      FROM jsonb_array_elements(retired_secrets) AS r)
    WHERE id = ${endpointId}::uuid`.execute(db);

onEachQueueBackend(
  t,
  "a circle's events reach its endpoint signed; other circles' and private ones do not",
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, env(backend));
    const queues = await processorWorkers(t, db, config);
    const receiver = await startReceiver(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const other = await createCircle(app, owner);
    const hook = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.created'] });
    const project = await createProject(app, owner, circle.id, { title: 'Delivered' });
    await createProject(app, owner, other.id, { title: 'Elsewhere' });
    await call(app, 'PATCH', `/v1/projects/${project.id}`, { token: owner.token, body: { title: 'Not subscribed' } });
    // A notice meant for one member alone: never sent, even to an endpoint taking every type.
    const all = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['*'] });
    await sql`INSERT INTO events (circle_id, type, subject_id, recipient_id, recipient_only, payload)
    VALUES (${circle.id}, 'challenge.day_missed', ${owner.id}, ${owner.id}, true, '{"localDate": "2026-01-01"}')`.execute(
      db,
    );
    await relay(db, queues, config);

    // The receiver is shared with the catch-all endpoint, whose message may arrive first: take the
    // request carrying this endpoint's message id.
    const [message] = await messagesSettle(db, hook.id, 1);
    await messagesSettle(db, all.id, 1);
    const first = receiver.received.find((r) => r.headers['webhook-id'] === message!.id);
    t.ok(first, 'the endpoint received its message, webhook-id being the message id');
    const body = new Webhook(hook.secret).verify(first!.body, first!.headers) as Record<string, any>;
    t.equal(body.type, 'project.created');
    t.equal(body.data.subjectId, project.id);
    t.equal(body.data.circleId, circle.id);
    t.equal(body.data.actorId, owner.id);
    t.type(body.data.eventId, 'number');
    t.match(body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    t.match(first!.headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/, 'one signature');
    t.match(first!.headers['content-type'], /^application\/json/);
    t.equal(message!.status, 'succeeded');
    t.same((await messagesOf(db, hook.id)).length, 1, 'one message: other circles and other types are not sent');
    t.same(
      (await messagesOf(db, all.id)).map((m) => m.event_type),
      ['webhook.created'],
      'the catch-all endpoint hears of itself only: it came after the projects, and the notice is private',
    );
    const log = await call(app, 'GET', `/v1/circles/${circle.id}/webhooks/${hook.id}/deliveries`, {
      token: owner.token,
    });
    t.equal(log.status, 200);
    t.match(log.body.items, [
      {
        messageId: message!.id,
        eventType: 'project.created',
        attempt: 1,
        status: 'succeeded',
        outcome: 'succeeded',
        responseStatus: 200,
        trigger: 'automatic',
        error: null,
      },
    ]);
    t.type(log.body.items[0].durationMs, 'number');
    await assertInvariants(t, db);
  },
);

onEachQueueBackend(
  t,
  'a failing receiver is retried with the same webhook-id until it recovers; others are not held back',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, env(backend, { WEBHOOK_RETRY_BASE_MS: '300' }));
    const queues = await processorWorkers(t, db, config);
    // The project "Flaky" fails twice, then succeeds, but only once the other message has
    // arrived: a failing message that held back the next one would never see it (its third
    // attempt would wait out its deadline). Everything else succeeds at once.
    let flakyFailures = 0;
    let otherArrived!: () => void;
    const otherReceived = new Promise<void>((resolve) => {
      otherArrived = resolve;
    });
    const receiver = await startReceiver(t, async (req, res) => {
      if (!req.body.includes('"Flaky"')) {
        otherArrived();
        return answer(204, '')(req, res, 0);
      }
      if (flakyFailures < 2) {
        flakyFailures++;
        return answer(503, 'busy')(req, res, 0);
      }
      await otherReceived;
      answer(204, '')(req, res, 0);
    });
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const hook = await createWebhook(app, owner, circle.id, {
      url: receiver.url,
      events: ['project.created', 'project.updated'],
    });
    const flaky = await createProject(app, owner, circle.id, { title: 'Flaky' });
    // The event names the project by id; the title travels in a second event's payload.
    await call(app, 'PATCH', `/v1/projects/${flaky.id}`, { token: owner.token, body: { description: 'x' } });
    await sql`UPDATE events SET payload = payload || '{"title": "Flaky"}' WHERE type = 'project.created' AND subject_id = ${flaky.id}`.execute(
      db,
    );
    await relay(db, queues, config);

    const messages = await messagesSettle(db, hook.id, 2);
    t.same(
      messages.map((m) => m.status),
      ['succeeded', 'succeeded'],
    );
    const attempts = await attemptsOf(db, hook.id);
    const flakyMessage = messages.find((m) => m.event_type === 'project.created')!;
    const other = messages.find((m) => m.event_type === 'project.updated')!;
    const ofFlaky = attempts.filter((a) => a.message_id === flakyMessage.id);
    t.same(
      ofFlaky.map((a) => [a.attempt, a.outcome, a.response_status]),
      [
        [1, 'http_error', 503],
        [2, 'http_error', 503],
        [3, 'succeeded', 204],
      ],
    );
    t.same(
      ofFlaky.map((a) => a.error),
      ['answered 503', 'answered 503', null],
    );
    const flakyIds = receiver.received.filter((r) => r.body.includes('"Flaky"')).map((r) => r.headers['webhook-id']);
    t.same(flakyIds, [flakyMessage.id, flakyMessage.id, flakyMessage.id], 'every attempt carries the same webhook-id');
    // No ordering between messages: the later event was delivered while the first was still
    // retried. The third attempt's success above says so: the receiver answered it only once the
    // other message had arrived.
    const otherDone = attempts.find((a) => a.message_id === other.id)!;
    t.equal(otherDone.attempt, 1, 'the other message went through at its first attempt');
    t.ok(ofFlaky[1]!.started_at.getTime() - ofFlaky[0]!.finished_at.getTime() >= 150, 'the retry waited its backoff');
    t.same(
      await deliveryCountsByOutcome(db),
      { succeeded: 2, http_error: 2, timeout: 0, refused: 0, network_error: 0 },
      'the counts the metrics read',
    );

    const log = await call(app, 'GET', `/v1/circles/${circle.id}/webhooks/${hook.id}/deliveries?limit=2`, {
      token: owner.token,
    });
    t.same(
      log.body.items.map((d: { attempt: number; messageId: string }) => d.attempt),
      [3, 2],
      'newest first',
    );
    const rest = await call(
      app,
      'GET',
      `/v1/circles/${circle.id}/webhooks/${hook.id}/deliveries?limit=2&cursor=${log.body.nextCursor}`,
      { token: owner.token },
    );
    t.same(rest.body.items.length, 2);
    t.equal(rest.body.nextCursor, null);
    const endpoint = await call(app, 'GET', `/v1/circles/${circle.id}/webhooks`, { token: owner.token });
    t.equal(endpoint.body.items[0].failureStreak, 0);
    await assertInvariants(t, db);
  },
);

onEachQueueBackend(t, 'redelivery sends the same message again with the same webhook-id', async (t, backend) => {
  const { app, db, config } = await buildTestApp(t, env(backend));
  const queues = await processorWorkers(t, db, config);
  const receiver = await startReceiver(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const hook = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.created'] });
  await createProject(app, owner, circle.id);
  await relay(db, queues, config);
  const [first] = await attemptsReach(db, hook.id, 1);
  const base = `/v1/circles/${circle.id}/webhooks/${hook.id}/deliveries`;
  const res = await call(app, 'POST', `${base}/${first!.id}/redeliver`, { token: owner.token });
  t.equal(res.status, 202);
  t.same(res.body, { webhookId: hook.id, messageId: first!.message_id, attempt: 2, status: 'pending' });
  const attempts = await attemptsReach(db, hook.id, 2);
  t.match(attempts[1], { message_id: first!.message_id, attempt: 2, trigger: 'redelivery', outcome: 'succeeded' });
  const received = await receiver.requests(2);
  t.equal(received[1]!.headers['webhook-id'], received[0]!.headers['webhook-id']);
  t.equal(received[1]!.body, received[0]!.body, 'the same bytes');
  t.ok(new Webhook(hook.secret).verify(received[1]!.body, received[1]!.headers));
  const requested = await db
    .selectFrom('events')
    .select('payload')
    .where('type', '=', 'webhook.redelivery_requested')
    .execute();
  t.same(
    requested.map((e) => e.payload),
    [{ messageId: first!.message_id, eventId: (await messagesOf(db, hook.id))[0]!.event_id, attempt: 2 }],
  );

  // Refusals change nothing.
  await sql`UPDATE webhook_messages SET status = 'pending', next_attempt_at = now() + interval '1 hour', completed_at = NULL WHERE id = ${first!.message_id}`.execute(
    db,
  );
  t.ok(
    isProblem(
      await call(app, 'POST', `${base}/${first!.id}/redeliver`, { token: owner.token }),
      409,
      'delivery_in_progress',
    ),
  );
  await sql`UPDATE webhook_messages SET status = 'succeeded', next_attempt_at = NULL, completed_at = now() WHERE id = ${first!.message_id}`.execute(
    db,
  );
  t.ok(
    isProblem(
      await call(app, 'POST', `${base}/00000000-0000-4000-8000-000000000000/redeliver`, { token: owner.token }),
      404,
      'delivery_not_found',
    ),
  );
  await call(app, 'PATCH', `/v1/circles/${circle.id}/webhooks/${hook.id}`, {
    token: owner.token,
    body: { enabled: false },
  });
  t.ok(
    isProblem(
      await call(app, 'POST', `${base}/${first!.id}/redeliver`, { token: owner.token }),
      409,
      'webhook_disabled',
    ),
  );
  await assertInvariants(t, db);
});

onEachQueueBackend(
  t,
  'after rotation both secrets verify during the grace period, then only the new one',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, env(backend));
    const queues = await processorWorkers(t, db, config);
    const receiver = await startReceiver(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const hook = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.created'] });
    const rotated = await call(app, 'POST', `/v1/circles/${circle.id}/webhooks/${hook.id}/rotate-secret`, {
      token: owner.token,
    });
    t.equal(rotated.status, 200);
    t.match(rotated.body.secret, /^whsec_/);
    t.not(rotated.body.secret, hook.secret);
    const grace = new Date(rotated.body.previousSecretExpiresAt).getTime() - Date.now();
    t.ok(grace > 23.9 * 3600_000 && grace <= 24 * 3600_000, 'the old secret signs for 24 hours');

    await createProject(app, owner, circle.id);
    await relay(db, queues, config);
    const [during] = await receiver.requests(1);
    t.equal(during!.headers['webhook-signature']!.split(' ').length, 2, 'two signatures');
    t.ok(new Webhook(rotated.body.secret).verify(during!.body, during!.headers), 'the new secret verifies');
    t.ok(new Webhook(hook.secret).verify(during!.body, during!.headers), 'the old secret verifies');

    await expireRetiredSecrets(db, hook.id);
    await createProject(app, owner, circle.id);
    await relay(db, queues, config);
    const [, after] = await receiver.requests(2);
    t.equal(after!.headers['webhook-signature']!.split(' ').length, 1);
    t.ok(new Webhook(rotated.body.secret).verify(after!.body, after!.headers));
    t.throws(() => new Webhook(hook.secret).verify(after!.body, after!.headers), 'the old secret no longer verifies');

    const events = await db
      .selectFrom('events')
      .select(['type', 'payload'])
      .where('type', 'like', 'webhook.%')
      .execute();
    t.same(
      events.map((e) => e.type),
      ['webhook.created', 'webhook.secret_rotated'],
    );
    t.notMatch(JSON.stringify(events), /whsec_/, 'no secret in any event');
    await assertInvariants(t, db);
  },
);

onEachQueueBackend(
  t,
  'an endpoint failing message after message is disabled with its event, and re-enabled by hand',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(
      t,
      env(backend, { WEBHOOK_MAX_ATTEMPTS: '2', WEBHOOK_DISABLE_AFTER_FAILURES: '3' }),
    );
    const queues = await processorWorkers(t, db, config);
    const receiver = await startReceiver(t, answer(500, 'down'));
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const hook = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.created'] });
    for (const title of ['One', 'Two', 'Three']) await createProject(app, owner, circle.id, { title });
    await relay(db, queues, config);
    const messages = await messagesSettle(db, hook.id, 3);
    t.same(
      messages.map((m) => [m.status, m.attempts]),
      [
        ['failed', 2],
        ['failed', 2],
        ['failed', 2],
      ],
    );
    const url = `/v1/circles/${circle.id}/webhooks/${hook.id}`;
    const disabled = (await call(app, 'GET', `/v1/circles/${circle.id}/webhooks`, { token: owner.token })).body
      .items[0];
    t.match(disabled, { id: hook.id, enabled: false, disabledReason: 'failing', failureStreak: 3 });
    const event = await db
      .selectFrom('events')
      .selectAll()
      .where('type', '=', 'webhook.disabled')
      .executeTakeFirstOrThrow();
    t.match(event, { subject_id: hook.id, actor_id: null, payload: { reason: 'failing', failedMessages: 3 } });
    t.equal(event.created_at.getTime(), new Date(disabled.disabledAt).getTime(), 'written with the disabling');

    // Nothing is sent while disabled.
    await createProject(app, owner, circle.id, { title: 'While disabled' });
    await relay(db, queues, config);
    t.equal((await messagesOf(db, hook.id)).length, 3);

    receiver.behave(answer(200));
    const enabled = await call(app, 'PATCH', url, { token: owner.token, body: { enabled: true } });
    t.match(enabled.body, { enabled: true, disabledAt: null, disabledReason: null, failureStreak: 0 });
    t.equal((await db.selectFrom('events').select('type').where('type', '=', 'webhook.enabled').execute()).length, 1);
    await createProject(app, owner, circle.id, { title: 'After' });
    await relay(db, queues, config);
    const after = await messagesSettle(db, hook.id, 4);
    t.equal(after[3]!.status, 'succeeded');
    await assertInvariants(t, db);
  },
);

for (const oldJob of ['still waiting', 'finished'] as const) {
  onEachQueueBackend(
    t,
    `a redelivery after the endpoint was disabled and re-enabled mid-backoff is sent at once (the retry it replaces ${oldJob})`,
    async (t, backend) => {
      // The first retry waits 30 to 60 minutes.
      const { app, db, config } = await buildTestApp(t, env(backend, { WEBHOOK_RETRY_BASE_MS: '3600000' }));
      const queues = await processorWorkers(t, db, config);
      const deliveries = queues.get('webhook-delivery');
      const receiver = await startReceiver(t, answer(503, 'busy'));
      const owner = await registerUser(app, 'owner');
      const circle = await createCircle(app, owner);
      const hook = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.created'] });
      await createProject(app, owner, circle.id);
      await relay(db, queues, config);
      const [failed] = await attemptsReach(db, hook.id, 1);
      t.match(failed, { attempt: 1, outcome: 'http_error', response_status: 503 });
      t.ok(
        await waitFor(async () => (await deliveries.getDelayedCount()) === 1, 10_000, 25),
        'attempt 2 waits in its backoff',
      );
      const [retry] = await deliveries.getDelayed();
      t.ok(retry!.delay >= 30 * 60_000, 'for half an hour at least');
      const [waiting] = await messagesOf(db, hook.id);
      t.equal(
        retry!.id,
        storedJobId(deliveryJobKey(waiting!.id, 2, waiting!.next_attempt_at!)),
        'keyed by message, attempt and the due time the sweep would read',
      );

      const url = `/v1/circles/${circle.id}/webhooks/${hook.id}`;
      await call(app, 'PATCH', url, { token: owner.token, body: { enabled: false } });
      t.match(await messagesOf(db, hook.id), [{ status: 'failed', attempts: 1 }], 'disabling ended the message');
      if (oldJob === 'finished') {
        // The retry runs now, finds its message ended and sends nothing; BullMQ keeps it as completed.
        await retry!.promote();
        const done = await finishedJob(deliveries, retry!.id!);
        t.same(done.returnvalue, { result: 'skipped' });
      }
      t.equal(receiver.received.length, 1);
      receiver.behave(answer(200));
      t.equal((await call(app, 'PATCH', url, { token: owner.token, body: { enabled: true } })).status, 200);
      const asked = Date.now();
      const res = await call(app, 'POST', `${url}/deliveries/${failed!.id}/redeliver`, { token: owner.token });
      t.equal(res.status, 202);
      t.match(res.body, { messageId: failed!.message_id, attempt: 2, status: 'pending' });

      // Its own job: delivered now, not swallowed by the job of the retry it replaces.
      const attempts = await attemptsReach(db, hook.id, 2, 15_000);
      t.match(attempts[1], { attempt: 2, trigger: 'redelivery', outcome: 'succeeded' });
      t.ok(Date.now() - asked < 15_000, 'promptly');
      const received = await receiver.requests(2);
      t.equal(received[1]!.headers['webhook-id'], failed!.message_id, 'the same webhook-id');
      t.match(await messagesOf(db, hook.id), [{ status: 'succeeded', attempts: 2 }]);
      if (oldJob === 'still waiting') {
        // The replaced retry, when its time comes, finds the attempt made and sends nothing.
        await retry!.promote();
        const done = await finishedJob(deliveries, retry!.id!);
        t.same(done.returnvalue, { result: 'skipped' });
      }
      t.equal(receiver.received.length, 2, 'each attempt sent once');
      await assertInvariants(t, db);
    },
  );
}

onEachQueueBackend(
  t,
  'with private targets refused, literal private hosts are refused at creation and a name resolving to loopback at delivery',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, {
      ...queueBackendEnv(backend),
      WEBHOOK_RETRY_BASE_MS: '20',
      WEBHOOK_MAX_ATTEMPTS: '1',
    });
    t.equal(config.webhooks.allowPrivate, false);
    const queues = await processorWorkers(t, db, config);
    const receiver = await startReceiver(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    for (const url of [
      'http://127.0.0.1:8080/hook',
      'http://10.1.2.3/hook',
      'http://[::1]/hook',
      'http://169.254.169.254/',
      'http://[::ffff:127.0.0.1]/',
    ]) {
      const res = await call(app, 'POST', `/v1/circles/${circle.id}/webhooks`, {
        token: owner.token,
        body: { url, events: ['*'] },
      });
      t.ok(isProblem(res, 400, 'webhook_url_not_allowed'), `${url}: ${res.status} ${res.body.code}`);
      t.same(res.body.errors?.[0]?.path, 'body/url');
    }
    t.equal((await db.selectFrom('webhook_endpoints').select('id').execute()).length, 0, 'nothing written');

    const hook = await createWebhook(app, owner, circle.id, {
      url: `http://localhost:${receiver.port}/hook`,
      events: ['project.created'],
    });
    await createProject(app, owner, circle.id);
    await relay(db, queues, config);
    const [attempt] = await attemptsReach(db, hook.id, 1);
    t.equal(attempt!.outcome, 'refused');
    t.equal(attempt!.error, 'localhost resolves to a loopback address, which webhooks may not reach');
    t.equal(receiver.received.length, 0, 'the receiver heard nothing');
  },
);

onEachQueueBackend(t, 'a message whose job was lost is delivered by the sweep', async (t, backend) => {
  const { app, db, config } = await buildTestApp(t, env(backend));
  const receiver = await startReceiver(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const hook = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.created'] });
  await createProject(app, owner, circle.id);
  // Fanned out, then the queue store loses the job before any worker runs.
  await relay(db, app.queues, config);
  const deliveries = app.queues.get('webhook-delivery');
  const [fannedOut] = await messagesOf(db, hook.id);
  t.same(
    (await deliveries.getWaiting()).map((job) => job.id),
    [storedJobId(deliveryJobKey(fannedOut!.id, 1, fannedOut!.next_attempt_at!))],
    'the first attempt is keyed by the due time the sweep reads from the message',
  );
  await flushQueueStore(config);
  const ctx = { db, queues: app.queues, config, log: app.log };
  t.equal(await requeueOverdueMessages(ctx), 0, 'not yet overdue: the job may just be waiting');
  await sql`UPDATE webhook_messages SET next_attempt_at = now() - interval '2 minutes' WHERE endpoint_id = ${hook.id}`.execute(
    db,
  );
  t.equal(await requeueOverdueMessages(ctx), 1);
  t.equal(await requeueOverdueMessages(ctx), 1, 'swept again before any worker ran');
  t.equal(await deliveries.getWaitingCount(), 1, 'still one job: a re-enqueue keeps its key');
  await processorWorkers(t, db, config);
  const [message] = await messagesSettle(db, hook.id, 1);
  t.equal(message!.status, 'succeeded');
  t.equal((await receiver.requests(1)).length, 1);
  await assertInvariants(t, db);
});

/**
 * One message fanned out to a receiver while a saboteur fails its first attempt's job at once, as
 * the real worker does when the database stays unreachable through all its retries (or BullMQ
 * does to a job whose workers keep dying): the job is kept failed under the key the sweep computes.
 */
async function messageWithFailedJob(t: Test, backend: 'redis' | 'postgres') {
  const { app, db, config } = await buildTestApp(t, env(backend));
  const receiver = await startReceiver(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const hook = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.created'] });
  await createProject(app, owner, circle.id);
  const saboteur = saboteurWorker(t, config, 'webhook-delivery');
  await relay(db, app.queues, config);
  const [message] = await messagesOf(db, hook.id);
  const key = storedJobId(deliveryJobKey(message!.id, 1, message!.next_attempt_at!));
  const failed = await failedRun(app.queues.get('webhook-delivery'), key, 1);
  const ctx = { db, queues: app.queues, log: app.log };
  return { app, db, config, receiver, hook, message: message!, key, failed, saboteur, ctx };
}

onEachQueueBackend(t, 'a message whose job failed for good is retried by the sweep', async (t, backend) => {
  const { db, config, receiver, hook, message, failed, saboteur, ctx } = await messageWithFailedJob(t, backend);
  await saboteur.close();
  t.equal(await failed.getState(), 'failed', 'the job failed in the store');
  t.match(await messagesOf(db, hook.id), [{ status: 'pending', attempts: 0 }], 'while its message still waits');

  await processorWorkers(t, db, config);
  t.equal(await requeueOverdueMessages(ctx, 0), 1, 'the sweep takes it up');
  t.match(await messagesSettle(db, hook.id, 1), [{ id: message.id, status: 'succeeded', attempts: 1 }]);
  t.equal((await receiver.requests(1)).length, 1, 'delivered once');
  await assertInvariants(t, db);
});

onEachQueueBackend(
  t,
  'a message whose job keeps dying is retried a few times by the sweep, then ended',
  async (t, backend) => {
    const { app, db, receiver, hook, key, ctx } = await messageWithFailedJob(t, backend);
    for (let retry = 1; retry <= WEBHOOK_SWEEP_RETRIES; retry++) {
      t.equal(await requeueOverdueMessages(ctx, 0), 1, `sweep ${retry} retries it`);
      await failedRun(app.queues.get('webhook-delivery'), key, retry + 1);
    }
    t.equal(await requeueOverdueMessages(ctx, 0), 1, 'the next sweep gives it up');
    t.match(await messagesOf(db, hook.id), [{ status: 'failed', attempts: 0, next_attempt_at: null }]);
    t.equal(await requeueOverdueMessages(ctx, 0), 0, 'and no sweep takes it up again');
    t.same(await attemptsOf(db, hook.id), [], 'no attempt was recorded');
    t.match(
      await db.selectFrom('webhook_endpoints').select(['enabled', 'failure_streak']).executeTakeFirst(),
      { enabled: true, failure_streak: 0 },
      'the receiver was never the problem',
    );
    t.equal(receiver.received.length, 0);
    await assertInvariants(t, db);
  },
);

onEachQueueBackend(
  t,
  'a message fanned out just as its endpoint was disabled ends failed, by its job or, the job lost, by the sweep',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, env(backend));
    const receiver = await startReceiver(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const hook = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.created'] });
    const url = `/v1/circles/${circle.id}/webhooks/${hook.id}`;

    // The race, forced: the disabling transaction holds the endpoint's row while the relay's
    // fan-out reads the endpoint as enabled and then waits on that row (its foreign-key check);
    // the disabling ends the endpoint's pending messages, which cannot include the one not yet
    // committed, and the relay then commits it and enqueues its job.
    async function fanOutWhileDisabling(relayQueues: typeof app.queues) {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let holding!: (pid: number) => void;
      const holder = new Promise<number>((resolve) => {
        holding = resolve;
      });
      const disabling = db.transaction().execute(async (trx) => {
        const endpoint = await lockEndpoint(trx, circle.id, hook.id, 'end');
        holding(await backendPid(trx));
        await gate;
        await disableEndpoint(trx, endpoint!, 'manual', owner.id);
      });
      const pid = await holder;
      const relaying = relay(db, relayQueues, config);
      t.match((await waitUntilBlockedBy(db, pid)).query, /INSERT INTO webhook_messages|webhook_endpoints/);
      release();
      await disabling;
      await relaying;
    }

    // Its job lost: the sweep re-enqueues it, and the job ends it.
    await createProject(app, owner, circle.id, { title: 'Lost' });
    await fanOutWhileDisabling(app.queues);
    const [lost] = await messagesOf(db, hook.id);
    t.match(lost, { status: 'pending', attempts: 0 }, 'a pending message of a disabled endpoint');
    t.match(await db.selectFrom('webhook_endpoints').select(['enabled', 'disabled_reason']).executeTakeFirst(), {
      enabled: false,
      disabled_reason: 'manual',
    });
    await flushQueueStore(config);
    const queues = await processorWorkers(t, db, config);
    await sql`UPDATE webhook_messages SET next_attempt_at = now() - interval '2 minutes' WHERE id = ${lost!.id}`.execute(
      db,
    );
    t.equal(await requeueOverdueMessages({ db, queues, log: app.log }), 1, 'the sweep takes it up');
    t.match(await messagesSettle(db, hook.id, 1), [{ id: lost!.id, status: 'failed', attempts: 0 }]);

    // Its job runs: it ends the message.
    t.equal((await call(app, 'PATCH', url, { token: owner.token, body: { enabled: true } })).status, 200);
    await createProject(app, owner, circle.id, { title: 'Raced' });
    await fanOutWhileDisabling(queues);
    const messages = await messagesSettle(db, hook.id, 2);
    t.match(messages[1], { status: 'failed', attempts: 0, next_attempt_at: null });
    t.ok(messages[1]!.completed_at, 'ended');
    const job = await waitFor(
      async () =>
        (await queues.get('webhook-delivery').getCompleted()).find((j) => j.data.messageId === messages[1]!.id),
      10_000,
      25,
    );
    t.match(job, { data: { attempt: 1 }, returnvalue: { result: 'failed' } }, 'by its first attempt, unsent');
    t.same(await attemptsOf(db, hook.id), [], 'no attempt was made');
    t.equal(receiver.received.length, 0, 'nothing was sent to the disabled endpoint');
    t.equal(await requeueOverdueMessages({ db, queues, log: app.log }), 0, 'nothing left for the sweep');
    await assertInvariants(t, db);
  },
);

onEachQueueBackend(
  t,
  'rotating again within the grace period: every retired secret keeps verifying until its own expiry',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, env(backend));
    const queues = await processorWorkers(t, db, config);
    const receiver = await startReceiver(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const hook = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.created'] });
    const rotate = async () => {
      const res = await call(app, 'POST', `/v1/circles/${circle.id}/webhooks/${hook.id}/rotate-secret`, {
        token: owner.token,
      });
      t.equal(res.status, 200);
      return res.body.secret as string;
    };
    // The receiver still has the first secret deployed when a second rotation follows the first.
    const secrets = [hook.secret as string, await rotate(), await rotate()];
    await createProject(app, owner, circle.id);
    await relay(db, queues, config);
    const [delivered] = await receiver.requests(1);
    t.equal(delivered!.headers['webhook-signature']!.split(' ').length, 3, 'three signatures');
    for (const [i, secret] of secrets.entries())
      t.ok(new Webhook(secret).verify(delivered!.body, delivered!.headers), `secret ${i + 1} of 3 verifies`);

    // Five retired secrets sign at most: four more rotations retire the very first early.
    for (let i = 0; i < 4; i++) secrets.push(await rotate());
    const stored = await db
      .selectFrom('webhook_endpoints')
      .select('retired_secrets')
      .where('id', '=', hook.id)
      .executeTakeFirstOrThrow();
    t.same(
      stored.retired_secrets.map((r) => r.secret),
      secrets.slice(1, -1).reverse(),
      'the five newest retired secrets, newest first',
    );
    await createProject(app, owner, circle.id);
    await relay(db, queues, config);
    const [, capped] = await receiver.requests(2);
    t.equal(capped!.headers['webhook-signature']!.split(' ').length, 6, 'the current secret and five retired ones');
    t.throws(
      () => new Webhook(secrets[0]!).verify(capped!.body, capped!.headers),
      'the first secret no longer verifies',
    );
    t.ok(new Webhook(secrets[1]!).verify(capped!.body, capped!.headers), 'the second still does');

    await expireRetiredSecrets(db, hook.id);
    const listed = await call(app, 'GET', `/v1/circles/${circle.id}/webhooks`, { token: owner.token });
    t.equal(listed.body.items[0].previousSecretExpiresAt, null, 'once every grace has ended, no retired secret signs');
    t.equal((await rotate()).length > 0, true);
    const after = await db
      .selectFrom('webhook_endpoints')
      .select('retired_secrets')
      .where('id', '=', hook.id)
      .executeTakeFirstOrThrow();
    t.same(
      after.retired_secrets.map((r) => r.secret),
      [secrets.at(-1)],
      'a rotation keeps only the secret it retires once the others have expired',
    );
    await assertInvariants(t, db);
  },
);

t.test(
  "a job made for an earlier due time of its message neither sends nor records in a redelivery's place",
  async (t) => {
    // No workers: the test runs the attempts itself. What a redelivery changes is the message's due
    // time, under the same attempt number; a job (or its POST in flight) of the old one must not
    // count as the redelivery.
    const { app, db, config } = await buildTestApp(t, env('redis'));
    const ctx = { db, queues: app.queues, config, log: app.log };
    let release: () => void = () => {};
    // The first request waits for the test; the others are answered at once.
    const receiver = await startReceiver(t, (_req, res, index) => {
      if (index === 0) release = () => res.writeHead(200).end('ok');
      else res.writeHead(200).end('ok');
    });
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const hook = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.created'] });
    await createProject(app, owner, circle.id);
    await relay(db, app.queues, config);
    const message = await db.selectFrom('webhook_messages').selectAll().executeTakeFirstOrThrow();
    const firstDue = message.next_attempt_at!.getTime();

    t.equal(
      await deliverAttempt(ctx, circle.id, message.id, 1, firstDue - 1000),
      'skipped',
      'an older due time: skipped',
    );
    t.equal(receiver.received.length, 0, 'nothing sent');

    // The job for the current due time sends; while its POST waits, the message gets a new due time.
    const inFlight = deliverAttempt(ctx, circle.id, message.id, 1, firstDue);
    await receiver.requests(1);
    await db
      .updateTable('webhook_messages')
      .set({ next_attempt_at: new Date(firstDue + 5_000) })
      .where('id', '=', message.id)
      .execute();
    release();
    t.equal(await inFlight, 'stale', 'its answer is not recorded over the new due time');
    t.same(await attemptsOf(db, hook.id), [], 'no attempt recorded');

    t.equal(
      await deliverAttempt(ctx, circle.id, message.id, 1, firstDue + 5_000),
      'succeeded',
      'the current job delivers',
    );
    t.equal((await attemptsOf(db, hook.id)).length, 1);
    await assertInvariants(t, db);
  },
);
