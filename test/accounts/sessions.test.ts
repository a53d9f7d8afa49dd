import t from 'tap';
import { sql } from 'kysely';
import { buildTestApp, call, isProblem, registerUser, type Reply } from '../helper.js';
import { hashPassword } from '../../src/accounts/passwords.js';
import { answeredOrBlocked, backendPid, waitUntilBlockedBy, waitUntilLockWaiters } from '../lock-waits.js';
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

t.test('a refresh in flight does not outlive the logout or password change that ends its session', async (t) => {
  for (const ending of ['logout', 'password change'] as const) {
    t.test(ending, async (t) => {
      const { app, db } = await buildTestApp(t);
      const user = await registerUser(app, ending === 'logout' ? 'racer' : 'changer');
      const refresh = (refreshToken: string) => call(app, 'POST', '/v1/auth/refresh', { body: { refreshToken } });
      // The session that ends: the logout names it; the password change keeps the caller's own
      // (registerUser's) and ends this one.
      const phone = await call(app, 'POST', '/v1/auth/login', { body: { handle: user.handle, password: PASSWORD } });
      const phoneSession: string = app.jwt.decode<{ sid: string }>(phone.body.accessToken)!.sid;
      // The test holds the user's row. A refresh that did not take turns with the others would
      // spend its token, then wait to store the new one (its foreign key needs the row), and the
      // logout's revocation would begin meanwhile, queued behind the spent token, with a snapshot
      // that can never see the new one. Both requests are seen waiting before the row is let go.
      let refreshing!: Promise<Reply>;
      let ended!: Promise<Reply>;
      await db.transaction().execute(async (trx) => {
        await sql`SELECT 1 FROM users WHERE id = ${user.id}::uuid FOR UPDATE`.execute(trx);
        refreshing = refresh(phone.body.refreshToken);
        await waitUntilBlockedBy(db, await backendPid(trx));
        ended =
          ending === 'logout'
            ? call(app, 'POST', '/v1/auth/logout', {
                token: user.token,
                body: { refreshToken: phone.body.refreshToken },
              })
            : call(app, 'POST', '/v1/me/password', {
                token: user.token,
                body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
              });
        await waitUntilLockWaiters(db, 2);
      });
      const [refreshed, end] = await Promise.all([refreshing, ended]);
      t.equal(end.status, 204, `the ${ending} succeeded`);
      if (refreshed.status === 200) {
        t.ok(
          isProblem(await refresh(refreshed.body.refreshToken), 401, 'invalid_refresh_token'),
          'the token the refresh issued ended with its session',
        );
      } else {
        t.ok(isProblem(refreshed, 401, 'invalid_refresh_token'), 'or the refresh found its session ended');
      }
      const live = await db
        .selectFrom('refresh_tokens')
        .select('family_id')
        .where('family_id', '=', phoneSession)
        .where('revoked_at', 'is', null)
        .execute();
      t.same(live, [], 'no token of the ended session is live');
    });
  }
});

t.test('a login in flight does not outlive a password change that commits before it stores its session', async (t) => {
  const { app, db, config } = await buildTestApp(t);
  const user = await registerUser(app, 'intruded');
  const sessionsBefore = await db
    .selectFrom('refresh_tokens')
    .select('family_id')
    .where('user_id', '=', user.id)
    .execute();
  // The test stands in for a password change: it holds the lock the change's UPDATE takes, lets
  // the login (with the old password) verify meanwhile, and replaces the hash before committing.
  // A login that stored its session without taking turns would answer 200 at once, its session
  // out of reach of the change that was committing.
  const newHash = await hashPassword(NEW_PASSWORD, config.passwordHashCost);
  let logging!: Promise<Reply>;
  let seen!: { answered: Reply } | { blocked: string };
  await db.transaction().execute(async (trx) => {
    await sql`SELECT 1 FROM users WHERE id = ${user.id}::uuid FOR NO KEY UPDATE`.execute(trx);
    logging = call(app, 'POST', '/v1/auth/login', { body: { handle: user.handle, password: PASSWORD } });
    seen = await answeredOrBlocked(db, await backendPid(trx), logging);
    await trx.updateTable('users').set({ password_hash: newHash }).where('id', '=', user.id).execute();
  });
  t.ok('blocked' in seen, 'the login waited for the session lock before storing its session');
  t.ok(isProblem(await logging, 401, 'invalid_credentials'), 'and then found the password it verified replaced');
  const sessionsAfter = await db
    .selectFrom('refresh_tokens')
    .select('family_id')
    .where('user_id', '=', user.id)
    .execute();
  t.same(sessionsAfter, sessionsBefore, 'no session was stored');
  t.equal(
    (await call(app, 'POST', '/v1/auth/login', { body: { handle: user.handle, password: NEW_PASSWORD } })).status,
    200,
    'the new password logs in',
  );
});
