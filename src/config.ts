import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';

// Every setting the service reads, validated once at start-up. Nothing else in src/ reads
// process.env, so this file is the whole list of knobs an operator has.
const EnvSchema = Type.Object({
  DATABASE_URL: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'Postgres connection string; the database is created if missing. Unset: an embedded PostgreSQL in DATA_DIR',
    }),
  ),
  DATA_DIR: Type.String({
    minLength: 1,
    default: './.data',
    description: 'Where the embedded PostgreSQL and the generated JWT secret live when DATABASE_URL is unset',
  }),
  MIGRATE_ON_START: Type.Union([Type.Literal('true'), Type.Literal('false')], {
    default: 'true',
    description:
      'false leaves migrating to `npm run migrate` (a deploy step); a process then refuses to start on a database that lacks migrations',
  }),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 200, default: 20, description: 'Connections per process' }),
  DATABASE_CONNECT_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 600_000,
    default: 5_000,
    description: 'How long a request waits for a database connection before it is answered 503',
  }),
  REDIS_URL: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'Redis for BullMQ queues and shared rate-limit counters; unset: neither uses Redis',
    }),
  ),
  QUEUE_BACKEND: Type.Optional(
    Type.Union([Type.Literal('redis'), Type.Literal('postgres')], {
      description: 'Where the BullMQ queues live; default redis when REDIS_URL is set, else postgres',
    }),
  ),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  ROLE: Type.Union([Type.Literal('all'), Type.Literal('api'), Type.Literal('worker')], {
    default: 'all',
    description: 'all = API and workers in one process',
  }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  JWT_SECRET: Type.Optional(
    Type.String({
      minLength: 32,
      description:
        'HMAC key for access tokens, at least 32 characters; required with DATABASE_URL, generated into DATA_DIR without',
    }),
  ),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'circle-actions' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'circle-actions-api' }),
  ACCESS_TOKEN_TTL_SECONDS: Type.Integer({ minimum: 10, maximum: 86400, default: 900 }),
  // Both lifetimes end up in SQL intervals (the lease one cast ::int): a year bounds them well
  // inside what Postgres takes, so a value that passed start-up cannot fail every request later.
  REFRESH_TOKEN_TTL_SECONDS: Type.Integer({ minimum: 60, maximum: 365 * 86400, default: 30 * 86400 }),
  PASSWORD_HASH_COST: Type.Integer({
    minimum: 10,
    maximum: 20,
    default: 17,
    description: 'log2 of the scrypt cost N; 17 is the OWASP minimum',
  }),
  RATE_LIMIT_MAX: Type.Integer({
    minimum: 1,
    default: 600,
    description: 'Requests per minute per user (per IP before login)',
  }),
  AUTH_RATE_LIMIT_MAX: Type.Integer({
    minimum: 1,
    default: 20,
    description: 'Login and register attempts per minute per IP',
  }),
  QUEUE_PREFIX: Type.String({
    minLength: 1,
    pattern: '^[A-Za-z0-9_{}:-]+$',
    default: 'ca',
    description: 'BullMQ key prefix; wrap in {} for Redis Cluster',
  }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 1024 * 1024 }),
  MAX_LIVE_CLAIMS_PER_MEMBER: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 10,
    description: 'Active claims one member may hold at once',
  }),
  MAX_LEASE_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 365 * 86400,
    default: 7 * 86400,
    description: 'Longest a lease may run, including extensions',
  }),
  SWEEP_INTERVAL_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 60,
    default: 30,
    description: 'How often sweeps repair what lost jobs missed',
  }),
  JOB_LOCK_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 600,
    default: 30,
    description:
      "How long a worker holds a job before another may take it over (a killed worker's job is retried after this)",
  }),
  METRICS_TOKEN: Type.String({ default: '', description: 'Bearer token for /metrics; empty means open' }),
  WEBHOOK_ALLOW_PRIVATE: Type.Union([Type.Literal('true'), Type.Literal('false')], {
    default: 'false',
    description:
      'true lets webhooks target loopback, private and link-local addresses (tests, closed networks); false refuses them',
  }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 60_000,
    default: 10_000,
    description: 'Longest a webhook delivery attempt may take, connecting and reading the answer included',
  }),
  WEBHOOK_MAX_ATTEMPTS: Type.Integer({
    minimum: 1,
    maximum: 20,
    default: 8,
    description: 'Automatic attempts per webhook message before it counts as failed',
  }),
  WEBHOOK_RETRY_BASE_MS: Type.Integer({
    minimum: 1,
    maximum: 3_600_000,
    default: 30_000,
    description: 'Delay before the second attempt; each later one doubles it (with jitter, capped at 6 hours)',
  }),
  WEBHOOK_DISABLE_AFTER_FAILURES: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 5,
    description: 'Consecutive failed messages after which an endpoint is disabled until re-enabled by hand',
  }),
  OPERATOR_TOKEN: Type.String({
    default: '',
    description: 'Token for the operator pages under /admin (bearer, or basic auth password); empty: no /admin',
  }),
  TRUST_PROXY: Type.String({
    default: '',
    description:
      'Proxies whose X-Forwarded-For is believed: a hop count (1, 2) or addresses/CIDRs, comma-separated; empty: none',
  }),
  CORS_ORIGINS: Type.String({
    default: '',
    description: 'Browser origins allowed to call the API, comma-separated exact origins or *; empty: no CORS headers',
  }),
});

export type Env = Static<typeof EnvSchema>;

/** The name of every setting the service reads (`.env.example` lists each; a test keeps them in step). */
export const SETTING_NAMES = Object.keys(EnvSchema.properties) as (keyof typeof EnvSchema.properties)[];

export interface Config {
  databaseUrl: string;
  dataDir: string;
  /** false: start-up only checks the schema is current, leaving migrating to the migrate command. */
  migrateOnStart: boolean;
  databasePoolSize: number;
  /** How long a query waits for a pooled connection (all busy, or a new one opening) before failing. */
  databaseConnectTimeoutMs: number;
  /** Unset: the queues run on Postgres and rate limits are counted per process. */
  redisUrl: string | null;
  queueBackend: 'redis' | 'postgres';
  host: string;
  port: number;
  role: 'all' | 'api' | 'worker';
  logLevel: string;
  jwt: { secret: string; issuer: string; audience: string; accessTtlSeconds: number };
  refreshTokenTtlSeconds: number;
  passwordHashCost: number;
  rateLimit: { max: number; authMax: number };
  queuePrefix: string;
  bodyLimitBytes: number;
  maxLiveClaimsPerMember: number;
  maxLeaseSeconds: number;
  sweepIntervalSeconds: number;
  jobLockSeconds: number;
  metricsToken: string;
  webhooks: {
    allowPrivate: boolean;
    timeoutMs: number;
    maxAttempts: number;
    retryBaseMs: number;
    disableAfterFailures: number;
  };
  /** Empty: the operator pages (/admin) are not served at all. */
  operatorToken: string;
  /** Fastify's `trustProxy`: false, a hop count, or the proxies' addresses and CIDRs. */
  trustProxy: false | number | string[];
  /** null: no CORS headers; '*': any origin; else the exact origins allowed. */
  corsOrigins: null | '*' | string[];
}

/**
 * The environment as read, before start-up fills in what embedded mode provides: without
 * DATABASE_URL the service runs its own PostgreSQL in DATA_DIR and keeps a generated JWT secret
 * there (src/embedded-mode.ts).
 */
export interface Settings extends Omit<Config, 'databaseUrl' | 'jwt'> {
  databaseUrl: string | null;
  jwt: Omit<Config['jwt'], 'secret'> & { secret: string | null };
}

export class ConfigError extends Error {}

/** The shortest METRICS_TOKEN or OPERATOR_TOKEN accepted. */
export const MIN_ACCESS_TOKEN_LENGTH = 16;

// Settings whose values must not reach logs: a secret, or a URL that may carry a password.
const SECRET_SETTINGS = new Set(['JWT_SECRET', 'METRICS_TOKEN', 'OPERATOR_TOKEN', 'DATABASE_URL', 'REDIS_URL']);

function invalid(name: string, text: string | undefined, problem: string): ConfigError {
  const shown = SECRET_SETTINGS.has(name) ? '(value hidden)' : JSON.stringify(text ?? '');
  return new ConfigError(`invalid setting ${name}=${shown}: ${problem}`);
}

/**
 * For entry points only, before the settings are read: loads `.env` from the working directory
 * into process.env when the file exists (Node's own parser). A variable the real environment
 * already has wins over the file, so a deployment can override what a checked-in file says.
 */
export function loadEnvFileIfPresent(path = '.env'): boolean {
  if (!existsSync(path)) return false;
  process.loadEnvFile(path);
  return true;
}

/** Reads and validates the environment; throws ConfigError naming the first bad setting. */
export function loadSettings(env: Record<string, string | undefined> = process.env): Settings {
  // Empty strings count as unset so `FOO=` in a .env file falls back to the default.
  const raw: Record<string, string> = {};
  for (const key of SETTING_NAMES) {
    const value = env[key];
    if (value === undefined || value === '') continue;
    // Conversion alone would read "3000.9" as 3000 and "0x10" as 16: a typo must not pass as a number.
    if ((EnvSchema.properties[key] as { type?: unknown }).type === 'integer' && !/^\s*-?\d+\s*$/.test(value)) {
      throw invalid(key, value, 'must be a whole number');
    }
    raw[key] = value;
  }
  // Convert works on a copy: the texts in `raw` are what error messages quote.
  const withDefaults = Value.Default(EnvSchema, Value.Convert(EnvSchema, { ...raw }));
  const [first] = Value.Errors(EnvSchema, withDefaults);
  if (first) {
    const name = first.instancePath.replace(/^\//, '') || 'environment';
    throw invalid(name, raw[name], first.message);
  }
  const e = withDefaults as Env;
  // Guessed over the network, with no budget on wrong guesses: a short token is no lock at all.
  for (const name of ['METRICS_TOKEN', 'OPERATOR_TOKEN'] as const)
    if (e[name] !== '' && e[name].length < MIN_ACCESS_TOKEN_LENGTH)
      throw invalid(name, raw[name], `must be empty (off) or at least ${MIN_ACCESS_TOKEN_LENGTH} characters`);
  if (e.DATABASE_URL !== undefined)
    checkServiceUrl(
      'DATABASE_URL',
      e.DATABASE_URL,
      ['postgres:', 'postgresql:'],
      'postgres://user:password@host:5432/name',
    );
  if (e.REDIS_URL !== undefined)
    checkServiceUrl('REDIS_URL', e.REDIS_URL, ['redis:', 'rediss:'], 'redis://user:password@host:6379/0');
  const queueBackend = e.QUEUE_BACKEND ?? (e.REDIS_URL ? 'redis' : 'postgres');
  if (queueBackend === 'redis' && !e.REDIS_URL)
    throw invalid('QUEUE_BACKEND', raw.QUEUE_BACKEND, 'the redis backend needs REDIS_URL, which is not set');
  return {
    databaseUrl: e.DATABASE_URL ?? null,
    dataDir: e.DATA_DIR,
    migrateOnStart: e.MIGRATE_ON_START === 'true',
    databasePoolSize: e.DATABASE_POOL_SIZE,
    databaseConnectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
    redisUrl: e.REDIS_URL ?? null,
    queueBackend,
    host: e.HOST,
    port: e.PORT,
    role: e.ROLE,
    logLevel: e.LOG_LEVEL,
    jwt: {
      secret: e.JWT_SECRET ?? null,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      accessTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS,
    },
    refreshTokenTtlSeconds: e.REFRESH_TOKEN_TTL_SECONDS,
    passwordHashCost: e.PASSWORD_HASH_COST,
    rateLimit: { max: e.RATE_LIMIT_MAX, authMax: e.AUTH_RATE_LIMIT_MAX },
    queuePrefix: e.QUEUE_PREFIX,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    maxLiveClaimsPerMember: e.MAX_LIVE_CLAIMS_PER_MEMBER,
    maxLeaseSeconds: e.MAX_LEASE_SECONDS,
    sweepIntervalSeconds: e.SWEEP_INTERVAL_SECONDS,
    jobLockSeconds: e.JOB_LOCK_SECONDS,
    metricsToken: e.METRICS_TOKEN,
    webhooks: {
      allowPrivate: e.WEBHOOK_ALLOW_PRIVATE === 'true',
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      maxAttempts: e.WEBHOOK_MAX_ATTEMPTS,
      retryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
      disableAfterFailures: e.WEBHOOK_DISABLE_AFTER_FAILURES,
    },
    operatorToken: e.OPERATOR_TOKEN,
    trustProxy: parseTrustProxy(raw.TRUST_PROXY),
    corsOrigins: parseCorsOrigins(raw.CORS_ORIGINS),
  };
}

/**
 * A connection URL must parse here, where the error names the setting and hides its value: an
 * unencoded `/`, `#` or `?` in a password breaks the parse, and the parser's own error, thrown
 * later by a client, carries the whole URL, password included, into the start-up log.
 */
function checkServiceUrl(name: string, text: string, schemes: string[], example: string): void {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    // reported below
  }
  const problem =
    !url || !schemes.includes(url.protocol)
      ? `not a URL like ${example} (a / # ? or @ in the user name or password must be percent-encoded)`
      : name === 'DATABASE_URL' && url.pathname.replace(/^\//, '') === ''
        ? `names no database: ${example}`
        : undefined;
  if (problem) throw invalid(name, text, problem);
}

/** The names proxy-addr (Fastify's trustProxy) knows for well-known ranges. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isAddressOrCidr(text: string): boolean {
  if (PROXY_RANGE_NAMES.has(text)) return true;
  const [address = '', bits, ...rest] = text.split('/');
  const family = isIP(address);
  if (!family || rest.length) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * TRUST_PROXY: unset (nobody's X-Forwarded-For is believed: request.ip is the peer), a hop count
 * (the last N proxies in front of the service), or the proxies' addresses and CIDRs. `true`
 * (believe any client) is refused on purpose: anyone could then pick the address their rate limit
 * is counted under.
 */
export function parseTrustProxy(text: string | undefined): Config['trustProxy'] {
  const value = text?.trim() ?? '';
  if (value === '' || value === 'false' || value === '0') return false;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops > 100) throw invalid('TRUST_PROXY', text, 'a hop count must be between 1 and 100');
    return hops;
  }
  const entries = value.split(',').map((entry) => entry.trim());
  const bad = entries.find((entry) => !isAddressOrCidr(entry));
  if (bad !== undefined)
    throw invalid(
      'TRUST_PROXY',
      text,
      `${JSON.stringify(bad)} is not an IP address or CIDR; give a hop count (1, 2) or addresses/CIDRs separated by commas`,
    );
  return entries;
}

/** CORS_ORIGINS: unset (no CORS), `*`, or exact origins (scheme://host[:port], no path). */
export function parseCorsOrigins(text: string | undefined): Config['corsOrigins'] {
  const value = text?.trim() ?? '';
  if (value === '') return null;
  if (value === '*') return '*';
  const origins = value.split(',').map((entry) => entry.trim());
  for (const origin of origins) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(origin);
    } catch {
      // reported below
    }
    // An origin is exactly what a browser sends in its Origin header: no path, no trailing slash.
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin)
      throw invalid(
        'CORS_ORIGINS',
        text,
        `${JSON.stringify(origin)} is not an origin like https://app.example.com (scheme, host and port only), or *`,
      );
  }
  return origins;
}

/** The settings of a process on external services: DATABASE_URL and JWT_SECRET are required. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  return withServices(loadSettings(env), {});
}

const missingDatabaseUrl = () => new ConfigError('missing setting DATABASE_URL: the Postgres connection string');

/** For operator commands that only touch the database (migrate, check:invariants). */
export function loadDatabaseUrl(env: Record<string, string | undefined> = process.env): string {
  const url = loadSettings(env).databaseUrl;
  if (!url) throw missingDatabaseUrl();
  return url;
}

/**
 * Completes the settings with what embedded mode provides. A setting the environment gives wins;
 * one still missing stops start-up naming it (there is no built-in JWT secret: a default would be
 * the same key on every installation that forgot to set one).
 */
export function withServices(settings: Settings, provided: { databaseUrl?: string; jwtSecret?: string }): Config {
  const databaseUrl = settings.databaseUrl ?? provided.databaseUrl;
  if (!databaseUrl) throw missingDatabaseUrl();
  const secret = settings.jwt.secret ?? provided.jwtSecret;
  if (!secret)
    throw new ConfigError(
      'missing setting JWT_SECRET: at least 32 random characters (generated only when DATABASE_URL is unset)',
    );
  return { ...settings, databaseUrl, jwt: { ...settings.jwt, secret } };
}
