import t from 'tap';
import { sql } from 'kysely';
import { heldTransaction } from '../held-transaction.js';
import { buildTestApp, call, createCircle, registerUser } from '../helper.js';
import { answeredOrBlocked, backendPid } from '../lock-waits.js';
import { createWebhook } from './webhook-helpers.js';

// The outbox relay's fan-out checks each new message's endpoint with a KEY SHARE lock, held until
// its whole batch commits. Edits that leave the endpoint enabled must not wait for a batch;
// disabling must, so that the messages the batch commits are among the pending ones it ends
// (webhooks/delivery forces that race). The test holds the fan-out's lock itself and watches
// Postgres's lock queue, so the interleaving is certain.

t.test('a fan-out in flight holds up edits of its endpoint only when they disable it', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const hook = await createWebhook(app, owner, circle.id, { url: 'https://example.com/hook', events: ['*'] });
  const url = `/v1/circles/${circle.id}/webhooks/${hook.id}`;

  const fanOut = await heldTransaction(db, async (trx) => {
    await sql`SELECT 1 FROM webhook_endpoints WHERE id = ${hook.id}::uuid FOR KEY SHARE`.execute(trx);
    return backendPid(trx);
  });
  const status = (outcome: { answered: { status: number } } | { blocked: string }) =>
    'answered' in outcome ? outcome.answered.status : `blocked: ${outcome.blocked}`;

  const edit = call(app, 'PATCH', url, { token: owner.token, body: { description: 'Renamed' } });
  t.equal(status(await answeredOrBlocked(db, fanOut.value, edit, 60_000)), 200, 'an edit is answered');
  const rotate = call(app, 'POST', `${url}/rotate-secret`, { token: owner.token, body: {} });
  t.equal(status(await answeredOrBlocked(db, fanOut.value, rotate, 60_000)), 200, 'a secret rotation is answered');

  const disable = call(app, 'PATCH', url, { token: owner.token, body: { enabled: false } });
  const disabling = await answeredOrBlocked(db, fanOut.value, disable, 60_000);
  t.ok('blocked' in disabling, 'disabling waits for the batch');
  await fanOut.commit();
  t.match((await disable).body, { enabled: false, description: 'Renamed' }, 'and goes on once it committed');
});
