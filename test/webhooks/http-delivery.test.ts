import { createSocket } from 'node:dgram';
import { pbkdf2 } from 'node:crypto';
import { promisify } from 'node:util';
import t from 'tap';
import { RESPONSE_CAP, postWebhook } from '../../src/webhooks/http-delivery.js';
import { answer, startReceiver } from './webhook-helpers.js';

// One attempt against real receivers: a receiver cannot hold the worker (one deadline for the
// whole attempt, a cap on what is read), redirects are not followed, and the address a name
// resolves to is checked where the connection is made.

// Attempts expected to be answered get a deadline no loaded machine reaches; the short one is for
// attempts that must end at it (their receiver, or their DNS, never answers).
const open = { timeoutMs: 30_000, allowPrivate: true };
const short = { timeoutMs: 400, allowPrivate: true };
const headers = { 'webhook-id': 'msg', 'webhook-timestamp': '1', 'webhook-signature': 'v1,x' };

t.test('a 2xx succeeds; other statuses and redirects fail with the status', async (t) => {
  const receiver = await startReceiver(t, (req, res, i) => {
    if (i === 0) return answer(200)(req, res, i);
    if (i === 1) return answer(410)(req, res, i);
    res.writeHead(302, { location: 'http://169.254.169.254/' });
    res.end();
  });
  t.match(await postWebhook(receiver.url, headers, '{"a":1}', open), {
    outcome: 'succeeded',
    responseStatus: 200,
    error: null,
  });
  t.same(receiver.received[0]!.body, '{"a":1}');
  t.equal(receiver.received[0]!.headers['webhook-id'], 'msg');
  t.match(await postWebhook(receiver.url, headers, '{}', open), { outcome: 'http_error', responseStatus: 410 });
  t.match(await postWebhook(receiver.url, headers, '{}', open), {
    outcome: 'http_error',
    responseStatus: 302,
    error: 'redirects are not followed',
  });
  t.equal(receiver.received.length, 3, 'the redirect target was not asked');
});

t.test('a receiver that never answers: the attempt ends at the deadline', async (t) => {
  const receiver = await startReceiver(t, () => {});
  const started = performance.now();
  const result = await postWebhook(receiver.url, headers, '{}', short);
  const took = performance.now() - started;
  t.match(result, { outcome: 'timeout', responseStatus: null });
  // Not before the deadline; an attempt that never ended would fail the test by its own timeout.
  t.ok(took >= 390, `ended after ${Math.round(took)} ms`);
});

t.test('a receiver that answers 200 and trickles forever: the deadline ends it, and the 200 counts', async (t) => {
  let timer: NodeJS.Timeout | undefined;
  t.teardown(() => clearInterval(timer));
  const receiver = await startReceiver(t, (_req, res) => {
    res.writeHead(200);
    timer = setInterval(() => res.write('.'), 20);
  });
  const started = performance.now();
  const result = await postWebhook(receiver.url, headers, '{}', short);
  t.match(result, { outcome: 'succeeded', responseStatus: 200, error: null }, 'the receiver took the message');
  t.ok(performance.now() - started >= 390, 'read until the deadline');
});

t.test('a receiver that answers 503 and never ends its body: a failure with its status', async (t) => {
  const receiver = await startReceiver(t, (_req, res) => {
    res.writeHead(503);
    res.write('busy');
  });
  const result = await postWebhook(receiver.url, headers, '{}', short);
  t.match(result, { outcome: 'http_error', responseStatus: 503, error: 'answered 503' });
});

t.test('a receiver streaming a huge answer: reading stops at the cap', async (t) => {
  let written = 0;
  const receiver = await startReceiver(t, (_req, res) => {
    res.writeHead(200);
    const chunk = Buffer.alloc(16 * 1024, 'x');
    const pump = () => {
      while (!res.destroyed && written < 1024 * 1024 * 1024) {
        written += chunk.length;
        if (!res.write(chunk)) return res.once('drain', pump);
      }
    };
    res.on('error', () => {});
    pump();
  });
  const result = await postWebhook(receiver.url, headers, '{}', open);
  t.match(result, { outcome: 'succeeded', responseStatus: 200 }, 'ended by the cap, not by the deadline');
  t.ok(written < 64 * RESPONSE_CAP, `the receiver got to write ${written} bytes, not a gigabyte`);
});

t.test('refused addresses: literal, and names resolving to them, checked at connect time', async (t) => {
  const receiver = await startReceiver(t);
  const closed = { ...open, allowPrivate: false };
  t.match(await postWebhook(receiver.url, headers, '{}', closed), {
    outcome: 'refused',
    error: /127\.0\.0\.1 \(loopback\)/,
  });
  t.match(await postWebhook(`http://localhost:${receiver.port}/hook`, headers, '{}', closed), {
    outcome: 'refused',
    error: 'localhost resolves to a loopback address, which webhooks may not reach',
  });
  t.match(await postWebhook('http://[::ffff:7f00:1]:9/', headers, '{}', closed), { outcome: 'refused' });
  t.equal(receiver.received.length, 0);
  t.match(await postWebhook(`http://localhost:${receiver.port}/hook`, headers, '{}', open), { outcome: 'succeeded' });
  t.match(await postWebhook('http://no-such-host.invalid/', headers, '{}', open), { outcome: 'network_error' });
});

t.test('a name whose DNS never answers: attempts end at their deadline and hold no thread', async (t) => {
  // A DNS server that hears every query and answers none.
  const silent = createSocket('udp4');
  const asked = new Set<string>();
  silent.on('message', (query) => {
    // The question's name starts at byte 12: length-prefixed labels.
    const labels: string[] = [];
    for (let i = 12; query[i]; i += query[i]! + 1) labels.push(query.toString('latin1', i + 1, i + 1 + query[i]!));
    asked.add(labels.join('.'));
  });
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  // Long enough that the key derivation's answer is always heard before any deadline passes.
  const options = { ...open, timeoutMs: 3_000, dnsServers: [`127.0.0.1:${silent.address().port}`] };

  // More attempts than libuv has threads (four): were each to hold one while its name resolved,
  // the key derivation below would wait for them all to give up.
  let ended = 0;
  const attempts = Array.from({ length: 8 }, (_, i) =>
    postWebhook(`http://receiver-${i}.example/`, headers, '{}', options).then((result) => {
      ended++;
      return result;
    }),
  );
  await promisify(pbkdf2)('secret', 'salt', 1, 32, 'sha256');
  t.equal(ended, 0, 'the thread pool served other work while every attempt still waited on DNS');
  for (const result of await Promise.all(attempts)) t.match(result, { outcome: 'timeout', responseStatus: null });
  t.same(
    [...asked].sort(),
    Array.from({ length: 8 }, (_, i) => `receiver-${i}.example`).sort(),
    'each name was asked of the configured server',
  );
});
