import t from 'tap';
import { buildTestApp, call, isProblem, registerUser } from '../helper.js';
import { eventTypes } from '../marketplace-helpers.js';

// Ending sessions: POST /v1/auth/logout and POST /v1/me/password.

const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'a brand new passphrase';

t.test('logout ends the session of a refresh token: it and every token rotated from it', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app, 'leaver');
  const rotated = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
  t.equal(rotated.status, 200);
  const other = await call(app, 'POST', '/v1/auth/login', { body: { handle: user.handle, password: PASSWORD } });

  const out = await call(app, 'POST', '/v1/auth/logout', {
    token: user.token,
    body: { refreshToken: rotated.body.refreshToken },
  });
  t.equal(out.status, 204);
  t.equal(out.body, null, 'no body');
  t.ok(
    isProblem(
      await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: rotated.body.refreshToken } }),
      401,
      'invalid_refresh_token',
    ),
    'the token given stops working',
  );
  t.equal(
    (await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: other.body.refreshToken } })).status,
    200,
    'another session of the same user goes on',
  );
  t.same(await eventTypes(db, user.id), ['session.ended'], 'one event');

  // Again, with an unknown token, or with someone else's: 204, and nothing changes.
  const stranger = await registerUser(app, 'stranger');
  for (const refreshToken of [rotated.body.refreshToken, 'not-a-token', stranger.refreshToken]) {
    t.equal((await call(app, 'POST', '/v1/auth/logout', { token: user.token, body: { refreshToken } })).status, 204);
  }
  t.equal(
    (await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: stranger.refreshToken } })).status,
    200,
    "someone else's token is not revoked",
  );
  t.same(await eventTypes(db, user.id), ['session.ended'], 'no further events');
  t.ok(
    isProblem(await call(app, 'POST', '/v1/auth/logout', { body: { refreshToken: 'x' } }), 401, 'missing_token'),
    'needs an access token',
  );
});

t.test('a password change keeps the caller signed in and ends every other session', async (t) => {
  const { app, db } = await buildTestApp(t);
  const user = await registerUser(app, 'changer');
  const phone = await call(app, 'POST', '/v1/auth/login', { body: { handle: user.handle, password: PASSWORD } });
  const laptop = await call(app, 'POST', '/v1/auth/login', { body: { handle: user.handle, password: PASSWORD } });
  // The caller's session is the one its access token came from, also after rotation.
  const current = await call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });

  const wrong = await call(app, 'POST', '/v1/me/password', {
    token: current.body.accessToken,
    body: { currentPassword: 'not my password', newPassword: NEW_PASSWORD },
  });
  t.ok(isProblem(wrong, 403, 'invalid_current_password'), 'a wrong current password: 403 with its code');
  const short = await call(app, 'POST', '/v1/me/password', {
    token: current.body.accessToken,
    body: { currentPassword: PASSWORD, newPassword: 'short' },
  });
  t.ok(isProblem(short, 400, 'invalid_request'), 'the rules of register: at least 8 characters');
  t.same(await eventTypes(db, user.id), [], 'refused changes leave no event');

  const changed = await call(app, 'POST', '/v1/me/password', {
    token: current.body.accessToken,
    body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
  });
  t.equal(changed.status, 204);

  const refresh = (refreshToken: string) => call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken } });
  t.equal((await refresh(current.body.refreshToken)).status, 200, "the caller's session goes on");
  t.equal((await refresh(phone.body.refreshToken)).status, 401, 'the phone is signed out');
  t.equal((await refresh(laptop.body.refreshToken)).status, 401, 'the laptop is signed out');
  const login = (password: string) => call(app, 'POST', '/v1/auth/login', { body: { handle: user.handle, password } });
  t.equal((await login(PASSWORD)).status, 401, 'the old password no longer works');
  t.equal((await login(NEW_PASSWORD)).status, 200, 'the new one does');
  const event = await db
    .selectFrom('events')
    .select(['type', 'payload', 'circle_id'])
    .where('subject_id', '=', user.id)
    .executeTakeFirstOrThrow();
  t.match(event, { type: 'user.password_changed', payload: { revokedSessions: 2 }, circle_id: null });
});
