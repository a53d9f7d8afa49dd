import t from 'tap';
import { ConfigError, loadConfig } from '../src/config.js';

// Settings come from the environment, validated once; a bad one stops start-up with its name.

t.test('defaults apply when nothing is set', async (t) => {
  const config = loadConfig({});
  t.match(config, {
    databaseUrl: 'postgres://postgres@127.0.0.1:5432/circle_actions',
    databasePoolSize: 20,
    redisUrl: 'redis://127.0.0.1:6379',
    host: '127.0.0.1',
    port: 3000,
    role: 'all',
    logLevel: 'info',
    jwt: { issuer: 'circle-actions', audience: 'circle-actions-api', accessTtlSeconds: 900 },
    refreshTokenTtlSeconds: 30 * 86400,
    passwordHashCost: 17,
    rateLimit: { max: 600, authMax: 20 },
    queuePrefix: 'ca',
    bodyLimitBytes: 1024 * 1024,
    maxLiveClaimsPerMember: 10,
    maxLeaseSeconds: 7 * 86400,
    sweepIntervalSeconds: 30,
    metricsToken: '',
  });
  t.ok(config.jwt.secret.length >= 32);
});

t.test('values are read and converted from their text', async (t) => {
  const config = loadConfig({
    PORT: '8080',
    ROLE: 'worker',
    LOG_LEVEL: 'debug',
    RATE_LIMIT_MAX: '5',
    AUTH_RATE_LIMIT_MAX: '2',
    QUEUE_PREFIX: '{ca}',
    JWT_SECRET: 'x'.repeat(32),
    METRICS_TOKEN: 'm',
  });
  t.equal(config.port, 8080);
  t.equal(config.role, 'worker');
  t.equal(config.logLevel, 'debug');
  t.same(config.rateLimit, { max: 5, authMax: 2 });
  t.equal(config.queuePrefix, '{ca}');
  t.equal(config.jwt.secret, 'x'.repeat(32));
  t.equal(config.metricsToken, 'm');
});

t.test('an empty value counts as unset', async (t) => {
  t.equal(loadConfig({ PORT: '', ROLE: '' }).port, 3000);
  t.equal(loadConfig({ ROLE: '' }).role, 'all');
});

t.test('an invalid setting throws ConfigError naming it', async (t) => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ JWT_SECRET: 'too-short' }, 'JWT_SECRET'],
    [{ ROLE: 'x' }, 'ROLE'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ RATE_LIMIT_MAX: '0' }, 'RATE_LIMIT_MAX'],
    [{ QUEUE_PREFIX: 'has space' }, 'QUEUE_PREFIX'],
    [{ PASSWORD_HASH_COST: '4' }, 'PASSWORD_HASH_COST'],
    [{ BODY_LIMIT_BYTES: '2048.5' }, 'BODY_LIMIT_BYTES'],
    [{ PORT: '0x10' }, 'PORT'],
    [{ PORT: '1e3' }, 'PORT'],
  ];
  for (const [env, name] of cases) {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      error = err;
    }
    t.ok(error instanceof ConfigError, `${JSON.stringify(env)} throws ConfigError`);
    t.match(
      (error as Error)?.message,
      new RegExp(`\\b${name}\\b`),
      `the message names ${name}: ${(error as Error)?.message}`,
    );
  }
});

t.test('numbers must be written as whole numbers, not rounded or parsed loosely', async (t) => {
  t.throws(() => loadConfig({ PORT: '3000.9' }), { message: 'invalid setting PORT="3000.9": must be a whole number' });
  t.equal(loadConfig({ PORT: ' 8080 ' }).port, 8080, 'surrounding spaces are fine');
});

t.test('a secret is not echoed back in the error', async (t) => {
  try {
    loadConfig({ JWT_SECRET: 'hunter2' });
    t.fail('should have thrown');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    t.equal(
      (err as Error).message,
      'invalid setting JWT_SECRET=(value hidden): must not have fewer than 32 characters',
    );
  }
});
