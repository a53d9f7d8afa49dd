import t from 'tap';
import { buildTestApp, call, isProblem, queueBackendEnv, registerUser } from '../helper.js';

// Request budgets counted in Redis: per IP on login/register/refresh, per user elsewhere; and the
// limiter fails open when Redis is unreachable. Without Redis, counted in each process.

t.test('past AUTH_RATE_LIMIT_MAX attempts in a minute, login is 429 rate_limited', async (t) => {
  // Registering spends one of the four attempts: the budget is shared with login and refresh.
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '4' });
  const user = await registerUser(app);
  const body = { handle: user.handle, password: 'wrong password' };
  for (let i = 1; i <= 3; i++) {
    const res = await call(app, 'POST', '/v1/auth/login', { body });
    t.ok(isProblem(res, 401, 'invalid_credentials'), `attempt ${i} is judged on its merits`);
    t.equal(res.headers['x-ratelimit-remaining'], String(3 - i));
  }
  const limited = await call(app, 'POST', '/v1/auth/login', {
    body: { handle: user.handle, password: 'correct horse battery' },
  });
  t.ok(isProblem(limited, 429, 'rate_limited'), JSON.stringify(limited.body));
  t.match(limited.type, /^application\/problem\+json/);
  const retryAfter = Number(limited.headers['retry-after']);
  t.ok(retryAfter > 0 && retryAfter <= 60, `retry-after is the seconds left in the window (${retryAfter})`);
  t.equal(limited.headers['x-ratelimit-limit'], '4');
  t.notOk(limited.body.user, 'even the right password is not checked once limited');
});

t.test('RATE_LIMIT_MAX limits each user on user routes, sequentially and in parallel', async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_MAX: '5' });
  const [ann, bob, cat] = [
    await registerUser(app, 'ann'),
    await registerUser(app, 'bob'),
    await registerUser(app, 'cat'),
  ];

  for (let i = 0; i < 5; i++) t.equal((await call(app, 'GET', '/v1/me', { token: ann.token })).status, 200);
  const sixth = await call(app, 'GET', '/v1/circles', { token: ann.token });
  t.ok(isProblem(sixth, 429, 'rate_limited'), 'the budget is shared across routes');
  t.ok(Number(sixth.headers['retry-after']) > 0);
  t.equal(
    (await call(app, 'GET', '/v1/me', { token: bob.token })).status,
    200,
    'another user has a budget of their own',
  );

  // Counting is atomic in Redis: 12 requests at once admit exactly 5.
  const burst = await Promise.all(Array.from({ length: 12 }, () => call(app, 'GET', '/v1/me', { token: cat.token })));
  const statuses = burst.map((r) => r.status);
  t.equal(statuses.filter((s) => s === 200).length, 5, statuses.join(','));
  t.equal(statuses.filter((s) => s === 429).length, 7);
  t.ok(burst.filter((r) => r.status === 429).every((r) => isProblem(r, 429, 'rate_limited')));

  const health = await call(app, 'GET', '/healthz');
  t.equal(health.status, 200, 'health checks are never limited');
});

t.test('with Redis unreachable the limiter fails open and requests still succeed', async (t) => {
  const { app } = await buildTestApp(t, {
    REDIS_URL: 'redis://127.0.0.1:1',
    RATE_LIMIT_MAX: '1',
    AUTH_RATE_LIMIT_MAX: '1',
  });
  const user = await registerUser(app);
  for (let i = 0; i < 3; i++) {
    const login = await call(app, 'POST', '/v1/auth/login', {
      body: { handle: user.handle, password: 'correct horse battery' },
    });
    t.equal(login.status, 200, `login ${i + 1}`);
    const me = await call(app, 'GET', '/v1/me', { token: user.token });
    t.equal(me.status, 200, `GET /v1/me ${i + 1}`);
  }
  const circle = await call(app, 'POST', '/v1/circles', { token: user.token, body: { name: 'x', joinPolicy: 'open' } });
  t.equal(circle.status, 201);
  const ready = await call(app, 'GET', '/readyz');
  t.ok(isProblem(ready, 503, 'service_unavailable'), 'readiness still reports Redis down');
});

t.test('the limiter counts on an auto-pipelined connection; queue producers keep a plain one', async (t) => {
  const { app } = await buildTestApp(t, queueBackendEnv('redis'));
  const queues = app.queueConnection;
  if (queues.backend !== 'redis' || !app.rateLimitRedis) throw new Error('expected the queues and limits in Redis');
  t.not(app.rateLimitRedis, queues.redis);
  t.equal(
    app.rateLimitRedis.options.enableAutoPipelining,
    true,
    'rate-limit increments of one event-loop turn share a round trip',
  );
  t.equal(queues.redis.options.enableAutoPipelining, false, 'BullMQ is not run auto-pipelined');
});

t.test('without REDIS_URL each process counts the budgets in its own memory', async (t) => {
  const { app, config } = await buildTestApp(t, {
    ...queueBackendEnv('postgres'),
    RATE_LIMIT_MAX: '5',
    AUTH_RATE_LIMIT_MAX: '3',
  });
  t.equal(config.redisUrl, null);
  t.equal(app.rateLimitRedis, null, 'no Redis connection at all');
  const user = await registerUser(app);
  // 12 requests at once admit exactly the 5 of the budget: counting in one process is exact.
  const burst = await Promise.all(Array.from({ length: 12 }, () => call(app, 'GET', '/v1/me', { token: user.token })));
  const statuses = burst.map((r) => r.status);
  t.equal(statuses.filter((s) => s === 200).length, 5, statuses.join(','));
  t.ok(burst.filter((r) => r.status === 429).every((r) => isProblem(r, 429, 'rate_limited')));
  // The credential budget: registering spent one of three, two logins spend the rest.
  const body = { handle: user.handle, password: 'correct horse battery' };
  t.same(
    [
      (await call(app, 'POST', '/v1/auth/login', { body })).status,
      (await call(app, 'POST', '/v1/auth/login', { body })).status,
    ],
    [200, 200],
  );
  const limited = await call(app, 'POST', '/v1/auth/login', { body });
  t.ok(isProblem(limited, 429, 'rate_limited'), 'the fourth attempt is limited');
  t.equal(limited.headers['x-ratelimit-limit'], '3');
});

t.test('without REDIS_URL a password change spends the same per-IP credential budget as login', async (t) => {
  const { app } = await buildTestApp(t, { ...queueBackendEnv('postgres'), AUTH_RATE_LIMIT_MAX: '3' });
  const user = await registerUser(app); // one of three
  const guess = () =>
    call(app, 'POST', '/v1/me/password', {
      token: user.token,
      body: { currentPassword: 'a wrong guess', newPassword: 'a brand new passphrase' },
    });
  t.ok(isProblem(await guess(), 403, 'invalid_current_password'), 'two of three');
  t.ok(isProblem(await guess(), 403, 'invalid_current_password'), 'three of three');
  const login = await call(app, 'POST', '/v1/auth/login', {
    body: { handle: user.handle, password: 'correct horse battery' },
  });
  t.ok(isProblem(login, 429, 'rate_limited'), 'a login from the same address is then limited');
});

t.test('login, register and refresh share one per-IP budget', async (t) => {
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '3' });
  const statuses = [
    (await call(app, 'POST', '/v1/auth/login', { body: { handle: 'nobody_here', password: 'wrong password' } })).status,
    (
      await call(app, 'POST', '/v1/auth/register', {
        body: { handle: 'shared_budget', password: 'correct horse battery' },
      })
    ).status,
    (await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: 'not-a-token' } })).status,
  ];
  t.same(statuses, [401, 201, 401], 'three attempts across the three routes fit the budget');
  const fourth = await call(app, 'POST', '/v1/auth/login', {
    body: { handle: 'shared_budget', password: 'correct horse battery' },
  });
  t.equal(fourth.status, 429, 'the fourth, on any of them, is limited');
});

t.test('an IPv6 client spends one budget for its whole /64, however it varies its address', async (t) => {
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '3', TRUST_PROXY: '1' });
  const login = (address: string) =>
    call(app, 'POST', '/v1/auth/login', {
      headers: { 'x-forwarded-for': address },
      body: { handle: 'nobody_here', password: 'wrong password' },
    });
  for (let i = 1; i <= 3; i++) t.equal((await login(`2001:db8:1:2::${i}`)).status, 401, `attempt ${i} is judged`);
  t.ok(
    isProblem(await login('2001:db8:1:2:ffff:ffff:ffff:ffff'), 429, 'rate_limited'),
    'a new address in the /64 is limited',
  );
  t.equal((await login('2001:db8:1:3::1')).status, 401, 'the next /64 is another client');
  t.equal((await login('::ffff:203.0.113.7')).status, 401, 'an IPv4-mapped address counts as its IPv4 address');
});

t.test('password change guesses are limited per user too, wherever they come from', async (t) => {
  // Each guess from an address of its own (a proxy in front, trusted for one hop): the per-IP
  // budget never fills, the user's does.
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '3', TRUST_PROXY: '1' });
  const user = await registerUser(app, 'guessed');
  const guess = (i: number) =>
    call(app, 'POST', '/v1/me/password', {
      token: user.token,
      headers: { 'x-forwarded-for': `203.0.113.${i}` },
      body: { currentPassword: `guess number ${i}`, newPassword: 'a brand new passphrase' },
    });
  for (let i = 1; i <= 3; i++) t.ok(isProblem(await guess(i), 403, 'invalid_current_password'), `guess ${i} is judged`);
  const fourth = await guess(4);
  t.ok(isProblem(fourth, 429, 'rate_limited'), 'the fourth, from yet another address, is limited');
  const other = await registerUser(app, 'bystander');
  const theirs = await call(app, 'POST', '/v1/me/password', {
    token: other.token,
    headers: { 'x-forwarded-for': '203.0.113.99' },
    body: { currentPassword: 'not theirs either', newPassword: 'a brand new passphrase' },
  });
  t.ok(isProblem(theirs, 403, 'invalid_current_password'), "another user's budget is their own");
});
