import t from 'tap';
import type { buildApp } from '../../src/app.js';
import { buildTestApp, call, isProblem, onEachQueueBackend, queueBackendEnv } from '../helper.js';

// The operator's queue dashboard (bull-board) at /admin/queues: behind OPERATOR_TOKEN (bearer, or
// basic auth with the token as the password), absent without it, working on both queue backends.

const TOKEN = 'operator-token-for-the-dashboard';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

onEachQueueBackend(t, 'with OPERATOR_TOKEN the dashboard answers the operator only', async (t, backend) => {
  const { app } = await buildTestApp(t, { ...queueBackendEnv(backend), OPERATOR_TOKEN: TOKEN });

  const anonymous = await call(app, 'GET', '/admin/queues');
  t.ok(isProblem(anonymous, 401, 'missing_token'), 'no token: 401 problem+json');
  t.match(anonymous.headers['www-authenticate'], /^Basic realm=/, 'a browser is asked to sign in');
  for (const authorization of [`Bearer ${TOKEN}x`, 'Bearer ', basic('ops', 'wrong'), `Token ${TOKEN}`, 'Basic !!!'])
    t.ok(
      isProblem(await call(app, 'GET', '/admin/queues', { headers: { authorization } }), 401),
      `${authorization.slice(0, 12)}...: 401`,
    );

  const page = await app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(page.statusCode, 200, 'bearer token: the page');
  t.match(page.headers['content-type'], /text\/html/);
  const browser = await app.inject({
    method: 'GET',
    url: '/admin/queues',
    headers: { authorization: basic('anyone', TOKEN) },
  });
  t.equal(browser.statusCode, 200, 'basic auth with the token as password: the page');

  const queues = await call(app, 'GET', '/admin/queues/api/queues', { token: TOKEN });
  t.equal(
    queues.status,
    200,
    `the dashboard's API reads the ${backend} queues: ${JSON.stringify(queues.body).slice(0, 400)}`,
  );
  t.same(
    (queues.body.queues as { name: string }[]).map((q) => q.name).sort(),
    [
      'challenge-closing',
      'circle-rollups',
      'claim-expiry',
      'maintenance',
      'review-deadline',
      'settlements',
      'webhook-delivery',
    ],
    'every queue is shown',
  );
  t.ok(
    (queues.body.queues as { readOnlyMode: boolean }[]).every((q) => q.readOnlyMode),
    'read-only: jobs are not removed or added by hand',
  );
  const refused = await call(app, 'PUT', '/admin/queues/api/queues/settlements/pause', { token: TOKEN });
  t.ok(refused.status >= 400, `pausing a queue is refused (${refused.status})`);
});

/** Every route of the app as [method, path], read back from Fastify's printed route tree. */
function routesOf(app: Awaited<ReturnType<typeof buildApp>>): { method: string; url: string }[] {
  const routes: { method: string; url: string }[] = [];
  const parents: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (.*?)(?: \(([^)]*)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    const url = (parents[depth - 1] ?? '') + match[2]!;
    parents[depth] = url;
    parents.length = depth + 1;
    for (const method of (match[3] ?? '').split(', ').filter(Boolean))
      if (method !== 'HEAD') routes.push({ method, url });
  }
  return routes;
}

t.test('every route under /admin refuses a request without the token', async (t) => {
  const { app } = await buildTestApp(t, { OPERATOR_TOKEN: TOKEN });
  const routes = routesOf(app).filter((r) => r.url.startsWith('/admin'));
  t.ok(routes.length >= 30, `${routes.length} routes under /admin`);
  for (const route of routes) {
    const url = route.url.replace(/:(\w+)/g, 'x').replace(/\*$/, 'static/app.js');
    const res = await app.inject({ method: route.method as 'GET', url });
    t.equal(res.statusCode, 401, `${route.method} ${route.url}: 401`);
  }
  const doc = await call(app, 'GET', '/openapi.json');
  t.notOk(
    Object.keys(doc.body.paths).some((path) => path.startsWith('/admin')),
    'the operator pages are not part of the API document (the hostile suites walk the document)',
  );
});

t.test('without OPERATOR_TOKEN there is no /admin at all', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await call(app, 'GET', '/admin/queues', { token: 'anything' });
  t.ok(isProblem(res, 404, 'route_not_found'));
  t.ok(isProblem(await call(app, 'GET', '/admin/queues/api/queues'), 404, 'route_not_found'));
});
