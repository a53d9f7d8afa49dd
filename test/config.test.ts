import t from 'tap';
import { ConfigError, loadConfig, loadDatabaseUrl, loadSettings, withServices } from '../src/config.js';

// Settings come from the environment, validated once; a bad one stops start-up with its name.

const external = { DATABASE_URL: 'postgres://db.example:5432/ca', JWT_SECRET: 's'.repeat(32) };

t.test('defaults apply when nothing is set; no database and no secret are made up', async (t) => {
  const settings = loadSettings({});
  t.match(settings, {
    databaseUrl: null,
    dataDir: './.data',
    databasePoolSize: 20,
    databaseConnectTimeoutMs: 5_000,
    redisUrl: null,
    queueBackend: 'postgres',
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
    webhooks: { allowPrivate: false, timeoutMs: 10_000, maxAttempts: 8, retryBaseMs: 30_000, disableAfterFailures: 5 },
  });
  t.equal(settings.jwt.secret, null, 'there is no built-in JWT secret');
});

t.test('on external services DATABASE_URL and JWT_SECRET are required, named when missing', async (t) => {
  t.throws(() => loadConfig({}), new ConfigError('missing setting DATABASE_URL: the Postgres connection string'));
  t.throws(
    () => loadConfig({ DATABASE_URL: external.DATABASE_URL }),
    new ConfigError(
      'missing setting JWT_SECRET: at least 32 random characters (generated only when DATABASE_URL is unset)',
    ),
  );
  t.throws(() => loadConfig({ DATABASE_URL: external.DATABASE_URL, JWT_SECRET: '' }), { message: /JWT_SECRET/ });
  const config = loadConfig(external);
  t.equal(config.databaseUrl, external.DATABASE_URL);
  t.equal(config.jwt.secret, external.JWT_SECRET);
});

t.test('operator commands on the database need DATABASE_URL only', async (t) => {
  t.equal(loadDatabaseUrl({ DATABASE_URL: external.DATABASE_URL }), external.DATABASE_URL);
  t.throws(() => loadDatabaseUrl({}), new ConfigError('missing setting DATABASE_URL: the Postgres connection string'));
});

t.test('embedded mode completes the settings; what the environment sets wins', async (t) => {
  const provided = { databaseUrl: 'postgres://postgres:pw@127.0.0.1:40000/circle_actions', jwtSecret: 'g'.repeat(43) };
  const embedded = withServices(loadSettings({ DATA_DIR: '/var/lib/ca' }), provided);
  t.match(embedded, { databaseUrl: provided.databaseUrl, dataDir: '/var/lib/ca', jwt: { secret: provided.jwtSecret } });
  t.equal(withServices(loadSettings({ JWT_SECRET: external.JWT_SECRET }), provided).jwt.secret, external.JWT_SECRET);
  t.throws(() => withServices(loadSettings({}), { databaseUrl: provided.databaseUrl }), { message: /JWT_SECRET/ });
});

t.test('values are read and converted from their text', async (t) => {
  const config = loadConfig({
    ...external,
    PORT: '8080',
    ROLE: 'worker',
    LOG_LEVEL: 'debug',
    RATE_LIMIT_MAX: '5',
    AUTH_RATE_LIMIT_MAX: '2',
    QUEUE_PREFIX: '{ca}',
    JWT_SECRET: 'x'.repeat(32),
    METRICS_TOKEN: 'metrics-token-of-a-fair-length',
  });
  t.equal(config.port, 8080);
  t.equal(config.role, 'worker');
  t.equal(config.logLevel, 'debug');
  t.same(config.rateLimit, { max: 5, authMax: 2 });
  t.equal(config.queuePrefix, '{ca}');
  t.equal(config.jwt.secret, 'x'.repeat(32));
  t.equal(config.metricsToken, 'metrics-token-of-a-fair-length');
  t.equal(loadConfig({ ...external, WEBHOOK_ALLOW_PRIVATE: 'true' }).webhooks.allowPrivate, true);
  t.throws(() => loadConfig({ ...external, WEBHOOK_ALLOW_PRIVATE: 'yes' }), { message: /WEBHOOK_ALLOW_PRIVATE/ });
});

t.test('the queue backend follows REDIS_URL unless QUEUE_BACKEND says otherwise', async (t) => {
  const redis = 'redis://127.0.0.1:6379';
  t.match(loadSettings({ REDIS_URL: redis }), { redisUrl: redis, queueBackend: 'redis' });
  t.match(loadSettings({}), { redisUrl: null, queueBackend: 'postgres' }, 'no Redis: queues in Postgres');
  t.match(loadSettings({ REDIS_URL: '' }), { redisUrl: null, queueBackend: 'postgres' }, 'empty counts as unset');
  t.match(
    loadSettings({ REDIS_URL: redis, QUEUE_BACKEND: 'postgres' }),
    { redisUrl: redis, queueBackend: 'postgres' },
    'queues in Postgres, rate limits still shared in Redis',
  );
  t.match(loadSettings({ REDIS_URL: redis, QUEUE_BACKEND: 'redis' }), { queueBackend: 'redis' });
  t.throws(() => loadSettings({ QUEUE_BACKEND: 'redis' }), {
    message: 'invalid setting QUEUE_BACKEND="redis": the redis backend needs REDIS_URL, which is not set',
  });
  t.throws(() => loadSettings({ QUEUE_BACKEND: 'redis', REDIS_URL: '' }), { message: /needs REDIS_URL/ });
  t.throws(() => loadSettings({ QUEUE_BACKEND: 'kafka' }), { message: /QUEUE_BACKEND/ });
});

t.test('an empty value counts as unset', async (t) => {
  t.equal(loadSettings({ PORT: '', ROLE: '' }).port, 3000);
  t.equal(loadSettings({ ROLE: '' }).role, 'all');
  t.equal(loadSettings({ DATABASE_URL: '' }).databaseUrl, null, 'an empty DATABASE_URL means embedded mode');
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
    [{ QUEUE_BACKEND: 'memory' }, 'QUEUE_BACKEND'],
    [{ QUEUE_BACKEND: 'redis' }, 'REDIS_URL'],
  ];
  for (const [env, name] of cases) {
    let error: unknown;
    try {
      loadSettings(env);
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
  t.throws(() => loadSettings({ PORT: '3000.9' }), {
    message: 'invalid setting PORT="3000.9": must be a whole number',
  });
  t.equal(loadSettings({ PORT: ' 8080 ' }).port, 8080, 'surrounding spaces are fine');
});

t.test('a secret is not echoed back in the error', async (t) => {
  try {
    loadSettings({ JWT_SECRET: 'hunter2' });
    t.fail('should have thrown');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    t.equal(
      (err as Error).message,
      'invalid setting JWT_SECRET=(value hidden): must not have fewer than 32 characters',
    );
  }
});

t.test('a connection URL that does not parse is refused by name, its password never shown', async (t) => {
  const cases: [string, string][] = [
    ['DATABASE_URL', 'postgres://ca:pa#ss/w0rd-secret@db.example:5432/ca'],
    ['DATABASE_URL', 'postgres://ca:pa/ss?w0rd-secret@db.example:5432/ca'],
    ['DATABASE_URL', 'mysql://ca:w0rd-secret@db.example:3306/ca'],
    ['DATABASE_URL', 'postgres://ca:w0rd-secret@db.example:5432'],
    ['REDIS_URL', 'redis://:pa#w0rd-secret@cache.example:6379'],
    ['REDIS_URL', 'cache.example:6379'],
  ];
  for (const [name, value] of cases) {
    let error: unknown;
    try {
      loadSettings({ [name]: value });
    } catch (err) {
      error = err;
    }
    t.ok(error instanceof ConfigError, `${name} ${value}: ConfigError`);
    t.match((error as Error)?.message, new RegExp(`^invalid setting ${name}=\\(value hidden\\): `), 'named');
    t.notMatch((error as Error)?.message, /secret/, 'the password is not in the message');
  }
  for (const value of ['postgres://ca:pa%23ss@db.example:5432/ca', 'postgresql://db.example/ca']) {
    t.equal(loadSettings({ DATABASE_URL: value }).databaseUrl, value, `${value} is accepted`);
  }
  t.equal(
    loadSettings({ REDIS_URL: 'rediss://:p%2Fw@cache.example:6380/1' }).redisUrl,
    'rediss://:p%2Fw@cache.example:6380/1',
  );
});

t.test('lifetimes that end up in SQL intervals have maxima', async (t) => {
  for (const name of ['MAX_LEASE_SECONDS', 'REFRESH_TOKEN_TTL_SECONDS']) {
    t.throws(() => loadSettings({ [name]: String(2 ** 31) }), { message: new RegExp(`^invalid setting ${name}=`) });
    t.doesNotThrow(() => loadSettings({ [name]: String(365 * 86400) }), `${name}: a year is allowed`);
  }
});

t.test('TRUST_PROXY: off, a hop count, or proxies by address; anything else stops start-up', async (t) => {
  t.equal(loadSettings({}).trustProxy, false, 'off by default');
  t.equal(loadSettings({ TRUST_PROXY: 'false' }).trustProxy, false);
  t.equal(loadSettings({ TRUST_PROXY: '0' }).trustProxy, false);
  t.equal(loadSettings({ TRUST_PROXY: '1' }).trustProxy, 1);
  t.equal(loadSettings({ TRUST_PROXY: ' 2 ' }).trustProxy, 2);
  t.same(loadSettings({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.7,::1, fd00::/8, loopback' }).trustProxy, [
    '10.0.0.0/8',
    '192.168.1.7',
    '::1',
    'fd00::/8',
    'loopback',
  ]);
  for (const bad of ['true', 'yes', '10.0.0.0/33', '10.0.0/8', 'proxy.internal', '1,2', '10.0.0.1,', '::1/129', '101'])
    t.throws(
      () => loadSettings({ TRUST_PROXY: bad }),
      { message: new RegExp(`^invalid setting TRUST_PROXY=${JSON.stringify(bad).replace(/[.*/]/g, '\\$&')}: `) },
      `${bad} is refused`,
    );
  t.throws(() => loadSettings({ TRUST_PROXY: 'true' }), {
    message:
      'invalid setting TRUST_PROXY="true": "true" is not an IP address or CIDR; give a hop count (1, 2) or addresses/CIDRs separated by commas',
  });
});

t.test('CORS_ORIGINS: none, *, or exact origins', async (t) => {
  t.equal(loadSettings({}).corsOrigins, null, 'no CORS by default');
  t.equal(loadSettings({ CORS_ORIGINS: '*' }).corsOrigins, '*');
  t.same(loadSettings({ CORS_ORIGINS: 'https://a.example.com, http://localhost:5173' }).corsOrigins, [
    'https://a.example.com',
    'http://localhost:5173',
  ]);
  for (const bad of [
    'https://a.example.com/',
    'a.example.com',
    'https://a.example.com/app',
    'ftp://a.example.com',
    '*.example.com',
  ])
    t.throws(
      () => loadSettings({ CORS_ORIGINS: bad }),
      { message: /^invalid setting CORS_ORIGINS=.*is not an origin/ },
      bad,
    );
});

t.test('OPERATOR_TOKEN is empty (no operator pages) by default', async (t) => {
  t.equal(loadSettings({}).operatorToken, '');
  t.equal(loadSettings({ OPERATOR_TOKEN: 'operator-token-16' }).operatorToken, 'operator-token-16');
});

t.test('METRICS_TOKEN and OPERATOR_TOKEN are off or long enough not to be guessed', async (t) => {
  for (const name of ['METRICS_TOKEN', 'OPERATOR_TOKEN']) {
    t.throws(() => loadSettings({ [name]: 'x'.repeat(15) }), {
      message: `invalid setting ${name}=(value hidden): must be empty (off) or at least 16 characters`,
    });
    t.doesNotThrow(() => loadSettings({ [name]: 'x'.repeat(16) }));
  }
});
