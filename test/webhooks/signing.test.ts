import t from 'tap';
import { Webhook } from 'standardwebhooks';
import { generateSecret, sign, signedHeaders, signingSecrets } from '../../src/webhooks/signing.js';

// Signing checked against an independent implementation of the Standard Webhooks spec.

t.test('secrets are whsec_ + base64 of 32 random bytes, each different', async (t) => {
  const a = generateSecret();
  const b = generateSecret();
  t.match(a, /^whsec_[A-Za-z0-9+/]+=*$/);
  t.equal(Buffer.from(a.slice('whsec_'.length), 'base64').length, 32);
  t.not(a, b);
});

t.test('signatures verify with the standardwebhooks package', async (t) => {
  const secret = generateSecret();
  const body = JSON.stringify({ type: 'task.completed', data: { eventId: 7, note: 'é ✓' } });
  const now = Math.floor(Date.now() / 1000);
  const headers = signedHeaders([secret], 'msg-1', now, body);
  t.same(new Webhook(secret).verify(body, headers), JSON.parse(body));
  t.equal(headers['webhook-signature'], new Webhook(secret).sign('msg-1', new Date(now * 1000), body));
  t.throws(() => new Webhook(secret).verify(`${body} `, headers), 'a changed body fails');
  t.throws(() => new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'msg-2' }), 'another id fails');
  t.throws(() => new Webhook(generateSecret()).verify(body, headers), 'another secret fails');
  t.throws(
    () => new Webhook(secret).verify(body, { ...headers, 'webhook-timestamp': String(now - 3600) }),
    'an old timestamp fails',
  );
  t.throws(() => sign('not-a-secret', 'm', now, body), /not a webhook signing secret/);
});

t.test('two secrets sign together, and each verifies on its own', async (t) => {
  const current = generateSecret();
  const previous = generateSecret();
  const body = '{"a":1}';
  const now = Math.floor(Date.now() / 1000);
  const headers = signedHeaders([current, previous], 'msg-9', now, body);
  t.equal(headers['webhook-signature'].split(' ').length, 2);
  t.ok(new Webhook(current).verify(body, headers));
  t.ok(new Webhook(previous).verify(body, headers));
});

t.test('each retired secret signs only while its grace lasts, newest first after the current one', async (t) => {
  const at = (ms: number) => new Date(ms).toISOString();
  const endpoint = {
    secret: 'whsec_new',
    retired_secrets: [
      { secret: 'whsec_last', expiresAt: at(3_000) },
      { secret: 'whsec_first', expiresAt: at(2_000) },
    ],
  };
  t.same(signingSecrets(endpoint, 1_999), ['whsec_new', 'whsec_last', 'whsec_first']);
  t.same(signingSecrets(endpoint, 2_000), ['whsec_new', 'whsec_last']);
  t.same(signingSecrets(endpoint, 3_000), ['whsec_new']);
  t.same(signingSecrets({ ...endpoint, retired_secrets: [] }, 0), ['whsec_new']);
  // As Postgres renders a timestamptz in JSON, whatever the session's zone.
  t.same(
    signingSecrets(
      { secret: 'whsec_new', retired_secrets: [{ secret: 'whsec_old', expiresAt: '1970-01-01T08:00:02+08:00' }] },
      1_999,
    ),
    ['whsec_new', 'whsec_old'],
  );
});
