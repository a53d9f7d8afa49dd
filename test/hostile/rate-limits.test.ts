import t from 'tap';
import { buildTestApp, call, isProblem, registerUser } from '../helper.js';
import { rowCounts } from './world.js';

// What test/http/rate-limit.test.ts does not cover: register and refresh budgets, bursts of
// parallel attempts (counted atomically in Redis, so exactly the budget gets through), writes
// refused with 429 creating nothing, and separate budgets per user on writes.

const PASSWORD = 'correct horse battery';

t.test('12 parallel registrations with AUTH_RATE_LIMIT_MAX=5: exactly 5 accounts, 7 x 429', async (t) => {
  const { app, db } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '5' });
  const burst = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      call(app, 'POST', '/v1/auth/register', { body: { handle: `burst_${i}`, password: PASSWORD } }),
    ),
  );
  const statuses = burst.map((r) => r.status).sort();
  t.equal(statuses.filter((s) => s === 201).length, 5, statuses.join(','));
  t.equal(statuses.filter((s) => s === 429).length, 7);
  t.ok(
    burst
      .filter((r) => r.status === 429)
      .every((r) => isProblem(r, 429, 'rate_limited') && Number(r.headers['retry-after']) > 0),
  );
  t.equal((await rowCounts(db)).users, 5, 'only the admitted registrations created accounts');
});

t.test('parallel login guessing is cut off at the budget, even with the right password', async (t) => {
  const { app, db } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '4' });
  // Login, register and refresh share one per-IP budget: registering used one of the four.
  const reg = await call(app, 'POST', '/v1/auth/register', { body: { handle: 'victim', password: PASSWORD } });
  t.equal(reg.status, 201);
  const guesses = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      call(app, 'POST', '/v1/auth/login', { body: { handle: 'victim', password: `guess number ${i}` } }),
    ),
  );
  const counts: Record<number, number> = {};
  for (const r of guesses) counts[r.status] = (counts[r.status] ?? 0) + 1;
  t.same(counts, { 401: 3, 429: 17 }, 'three guesses judged, the rest refused unseen');
  const right = await call(app, 'POST', '/v1/auth/login', { body: { handle: 'victim', password: PASSWORD } });
  t.ok(isProblem(right, 429, 'rate_limited'), 'the right password is not even checked once limited');
  t.equal((await rowCounts(db)).refresh_tokens, 1, 'no session was issued to the guesser');
});

t.test('refresh shares the per-IP auth budget: token guessing is cut off too', async (t) => {
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '3' });
  const user = await registerUser(app);
  const attempts = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: `not-a-token-${i}` } }),
    ),
  );
  const statuses = attempts.map((r) => r.status).sort();
  t.same(statuses, [401, 401, 429, 429, 429, 429, 429, 429], 'registering took one of three: two judged, six refused');
  t.ok(attempts.filter((r) => r.status === 429).every((r) => isProblem(r, 429, 'rate_limited')));
  const real = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
  t.ok(isProblem(real, 429, 'rate_limited'), 'a real token waits for the window too');
});

t.test('writes over RATE_LIMIT_MAX in parallel: exactly the budget is created, per user', async (t) => {
  const { app, db } = await buildTestApp(t, { RATE_LIMIT_MAX: '6' });
  const [ann, bob] = [await registerUser(app, 'ann'), await registerUser(app, 'bob')];
  const burst = await Promise.all([
    ...Array.from({ length: 15 }, (_, i) =>
      call(app, 'POST', '/v1/circles', { token: ann.token, body: { name: `Ann ${i}`, joinPolicy: 'open' } }),
    ),
    ...Array.from({ length: 15 }, (_, i) =>
      call(app, 'POST', '/v1/circles', { token: bob.token, body: { name: `Bob ${i}`, joinPolicy: 'open' } }),
    ),
  ]);
  const created = burst.filter((r) => r.status === 201);
  const limited = burst.filter((r) => r.status === 429);
  t.equal(created.length, 12, 'six each');
  t.equal(limited.length, 18);
  t.ok(limited.every((r) => isProblem(r, 429, 'rate_limited')));
  const owners = await db.selectFrom('circles').select('owner_id').execute();
  t.equal(owners.filter((o) => o.owner_id === ann.id).length, 6);
  t.equal(owners.filter((o) => o.owner_id === bob.id).length, 6);
  t.equal((await rowCounts(db)).memberships, 12, 'a refused write left no partial rows');
  const idem = await call(app, 'POST', '/v1/circles', {
    token: ann.token,
    body: { name: 'x', joinPolicy: 'open' },
    headers: { 'idempotency-key': 'limited-1' },
  });
  t.ok(isProblem(idem, 429, 'rate_limited'));
  t.equal((await rowCounts(db)).idempotency_keys, 0, 'a limited request takes no idempotency key');
});
