import t from 'tap';
import { buildTestApp, call } from '../helper.js';

// Rate limits count per client address (request.ip). Behind a proxy every request comes from the
// proxy, so TRUST_PROXY tells the service whose X-Forwarded-For to believe; without it the header
// is whatever the client wrote and must be ignored.

const PASSWORD = 'correct horse battery';

/** Three login attempts from the address `forwardedFor` names; returns their statuses. */
async function attempts(app: Parameters<typeof call>[0], forwardedFor: string) {
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await call(app, 'POST', '/v1/auth/login', {
      body: { handle: 'nobody_here', password: PASSWORD },
      headers: { 'x-forwarded-for': forwardedFor },
    });
    statuses.push(res.status);
  }
  return statuses;
}

t.test('TRUST_PROXY=1: clients behind the proxy get separate login budgets', async (t) => {
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '2', TRUST_PROXY: '1' });
  t.same(await attempts(app, '203.0.113.10'), [401, 401, 429], 'the first client uses up its budget');
  t.same(await attempts(app, '203.0.113.20'), [401, 401, 429], 'the second client has a budget of its own');
  const seen = await app.inject({
    method: 'GET',
    url: '/healthz',
    headers: { 'x-forwarded-for': '198.51.100.7, 203.0.113.30' },
  });
  t.equal(seen.statusCode, 200);
  t.same(
    await attempts(app, '198.51.100.7, 203.0.113.30'),
    [401, 401, 429],
    'with one hop trusted, the address the proxy appended is the client',
  );
  t.same(
    (await attempts(app, '198.51.100.8, 203.0.113.30')).at(0),
    429,
    'an address the client wrote before it changes nothing',
  );
});

t.test('TRUST_PROXY off (the default): X-Forwarded-For is ignored, one budget for the peer', async (t) => {
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '2' });
  t.same(await attempts(app, '203.0.113.10'), [401, 401, 429]);
  t.same(await attempts(app, '203.0.113.20'), [429, 429, 429], 'a new header buys no new budget');
});

t.test('TRUST_PROXY as addresses: only a listed proxy is believed', async (t) => {
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '1', TRUST_PROXY: '127.0.0.1/8, ::1' });
  // app.inject connects from 127.0.0.1, which the list trusts.
  t.same(await attempts(app, '203.0.113.10'), [401, 429, 429]);
  t.same(await attempts(app, '203.0.113.20'), [401, 429, 429]);
  const untrusting = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '1', TRUST_PROXY: '10.0.0.0/8' });
  t.same(await attempts(untrusting.app, '203.0.113.10'), [401, 429, 429]);
  t.same(await attempts(untrusting.app, '203.0.113.20'), [429, 429, 429], 'the peer is not a listed proxy');
});
