import t from 'tap';
import { buildTestApp, call, registerUser } from '../helper.js';

// CORS_ORIGINS lets browser pages on the named origins call the API; unset, the service sends no
// CORS headers at all.

const ALLOWED = 'https://app.example.com';

async function preflight(app: Parameters<typeof call>[0], origin: string, method = 'POST') {
  return app.inject({
    method: 'OPTIONS',
    url: '/v1/circles',
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': 'authorization, content-type, idempotency-key',
    },
  });
}

t.test('an allowed origin passes the preflight for the API methods and headers', async (t) => {
  const { app } = await buildTestApp(t, { CORS_ORIGINS: `${ALLOWED}, https://admin.example.com:8443` });
  for (const method of ['GET', 'POST', 'PATCH', 'PUT', 'DELETE']) {
    const res = await preflight(app, ALLOWED, method);
    t.equal(res.statusCode, 204, `${method} preflight`);
    t.equal(res.headers['access-control-allow-origin'], ALLOWED);
    t.match(String(res.headers['access-control-allow-methods']), new RegExp(`\\b${method}\\b`));
  }
  const res = await preflight(app, 'https://admin.example.com:8443');
  t.equal(res.headers['access-control-allow-origin'], 'https://admin.example.com:8443', 'the second origin too');
  const allowedHeaders = String(res.headers['access-control-allow-headers']).toLowerCase();
  for (const header of ['authorization', 'content-type', 'idempotency-key'])
    t.match(allowedHeaders, header, `${header} may be sent`);
  t.equal(res.headers['access-control-allow-credentials'], undefined, 'no cookies: the API takes bearer tokens');
  t.ok(Number(res.headers['access-control-max-age']) > 0, 'browsers may cache the preflight');

  const user = await registerUser(app);
  const real = await call(app, 'GET', '/v1/me', { token: user.token, headers: { origin: ALLOWED } });
  t.equal(real.status, 200);
  t.equal(real.headers['access-control-allow-origin'], ALLOWED, 'the actual request is allowed too');
  t.match(String(real.headers['access-control-expose-headers']).toLowerCase(), 'x-request-id');
});

t.test('a refused origin gets no CORS headers', async (t) => {
  const { app } = await buildTestApp(t, { CORS_ORIGINS: ALLOWED });
  for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.net', 'http://app.example.com']) {
    const res = await preflight(app, origin);
    t.equal(res.headers['access-control-allow-origin'], undefined, `${origin} is not allowed`);
    const real = await call(app, 'GET', '/healthz', { headers: { origin } });
    t.equal(real.headers['access-control-allow-origin'], undefined, `${origin}: no header on the request either`);
  }
});

t.test('CORS_ORIGINS=* allows any origin', async (t) => {
  const { app } = await buildTestApp(t, { CORS_ORIGINS: '*' });
  const res = await preflight(app, 'https://anywhere.example.org');
  t.equal(res.statusCode, 204);
  t.equal(res.headers['access-control-allow-origin'], '*');
});

t.test('without CORS_ORIGINS there are no CORS headers and no preflight route', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await preflight(app, ALLOWED);
  t.equal(res.headers['access-control-allow-origin'], undefined);
  t.not(res.statusCode, 204, 'no preflight answered');
  const real = await call(app, 'GET', '/healthz', { headers: { origin: ALLOWED } });
  t.equal(real.headers['access-control-allow-origin'], undefined);
});
