import { Writable } from 'node:stream';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { createLogger, REDACTION_CENSOR } from '../../src/infra/logger.js';
import { call, createTestEnv, registerUser } from '../helper.js';

// Credentials never reach the logs: the request lines carry the headers (Authorization, cookies)
// and error lines whatever an error carries, so the service's logger redacts them by name.

const PASSWORD = 'correct horse battery staple';
const SECRET = 'whsec_do-not-log-this-signing-secret';

function captured() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, stream };
}

t.test('a login, a bearer request and a failing request log no password, token or secret', async (t) => {
  const env = await createTestEnv(t);
  const { lines, stream } = captured();
  const app = await buildApp({ config: env.config, logger: createLogger('trace', stream) });
  // A route that fails the way a client library's error does: carrying the request it made.
  app.post('/test/fails', async (request) => {
    const err = new Error('upstream refused') as Error & Record<string, unknown>;
    err.request = { headers: { authorization: request.headers.authorization }, body: request.body };
    throw err;
  });
  t.teardown(() => app.close());
  await app.ready();

  const user = await registerUser(app, 'logged');
  const login = await call(app, 'POST', '/v1/auth/login', {
    body: { handle: user.handle, password: 'correct horse battery' },
    headers: { cookie: 'session=cookie-value-not-for-logs' },
  });
  t.equal(login.status, 200);
  const me = await call(app, 'GET', '/v1/me', { token: login.body.accessToken });
  t.equal(me.status, 200);
  await call(app, 'POST', '/v1/me/password', {
    token: login.body.accessToken,
    body: { currentPassword: 'correct horse battery', newPassword: PASSWORD },
  });
  const failed = await call(app, 'POST', '/test/fails', {
    token: login.body.accessToken,
    body: { secret: SECRET, refreshToken: login.body.refreshToken, nested: { password: PASSWORD } },
  });
  t.equal(failed.status, 500);

  const text = lines.join('\n');
  t.ok(lines.length > 8, `${lines.length} log lines captured`);
  t.match(text, /"authorization":"\[redacted\]"/, 'request lines show that a token was sent, not the token');
  t.match(text, /upstream refused/, 'the error itself is logged');
  for (const [what, value] of [
    ['the password', 'correct horse battery'],
    ['the new password', PASSWORD],
    ['the access token', login.body.accessToken],
    ['the refresh token', login.body.refreshToken],
    ['the register token', user.token],
    ['the cookie', 'cookie-value-not-for-logs'],
    ['the webhook secret', SECRET],
  ] as const)
    t.notOk(text.includes(value), `${what} appears in no log line`);
  t.ok(text.includes(REDACTION_CENSOR));
});
