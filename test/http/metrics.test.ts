import t from 'tap';
import { buildTestApp, call, isProblem } from '../helper.js';

t.test('metrics are open without METRICS_TOKEN and count requests by route pattern', async (t) => {
  const { app } = await buildTestApp(t);
  await call(app, 'GET', '/healthz');
  await call(app, 'GET', '/v1/circles/00000000-0000-4000-8000-000000000000');
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /text\/plain/);
  t.match(res.body, /process_cpu_user_seconds_total/);
  t.match(res.body, /http_requests_total\{method="GET",route="\/healthz",status="200"\} 1/);
  t.match(res.body, /route="\/v1\/circles\/:circleId",status="401"/, 'labelled by pattern, not by id');
  t.notMatch(res.body, /00000000-0000-4000-8000-000000000000/);
});

t.test('with METRICS_TOKEN, scrapers must present it', async (t) => {
  const { app } = await buildTestApp(t, { METRICS_TOKEN: 'scrape-secret-of-the-test' });
  const anonymous = await call(app, 'GET', '/metrics');
  t.ok(isProblem(anonymous, 401, 'invalid_token'));
  const wrong = await call(app, 'GET', '/metrics', { headers: { authorization: 'Bearer nope' } });
  t.ok(isProblem(wrong, 401, 'invalid_token'));
  const right = await app.inject({
    method: 'GET',
    url: '/metrics',
    headers: { authorization: 'Bearer scrape-secret-of-the-test' },
  });
  t.equal(right.statusCode, 200);
  t.match(right.body, /http_request_duration_seconds_bucket/);
});
