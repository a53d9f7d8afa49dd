import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import pg from 'pg';
import { LATEST_SCHEMA_VERSION } from 'bullmq';
import { QUEUE_SCHEMA } from '../src/jobs/queue-backend.js';
import { migrations } from '../db/migrations/index.js';
import { createDb } from '../src/infra/postgres.js';
import { migrateToLatest } from '../src/infra/migrations.js';
import { REDIS_URL, flushPrefix } from './helper.js';
import { databaseUrl, withAdminClient } from './setup/test-database.js';
import {
  freePort,
  spawnServer,
  waitUntilReady as waitUntilServiceReady,
  type ServerProcess,
} from './service-process.js';
import { waitFor } from './marketplace-helpers.js';

// The real entry point as an operator runs it: a process that creates and migrates its database,
// becomes ready, and exits cleanly on SIGTERM.

interface Server extends ServerProcess {
  port: number;
}

function startServer(t: Test, env: Record<string, string>, port: number): Server {
  const server = spawnServer(t, {
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    PASSWORD_HASH_COST: '10',
    ...env,
  });
  return Object.assign(server, { port });
}

const waitUntilReady = (server: Server) => waitUntilServiceReady(server, server.port);

/** A database name nobody has created yet, dropped (with its queue keys) after the test. */
async function freshDatabase(t: Test): Promise<{ name: string; url: string; prefix: string }> {
  const suffix = randomBytes(6).toString('hex');
  const name = `ca_test_srv_${suffix}`;
  const prefix = `catestsrv${suffix}`;
  t.teardown(async () => {
    await withAdminClient((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    await flushPrefix(prefix);
  });
  return { name, url: databaseUrl(name), prefix };
}

async function queryDatabase<R extends pg.QueryResultRow>(name: string, text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: databaseUrl(name) });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

async function appliedMigrations(name: string): Promise<string[]> {
  const rows = await queryDatabase<{ name: string }>(name, 'SELECT name FROM kysely_migration ORDER BY name');
  return rows.map((r) => r.name);
}

const databaseExists = (name: string) =>
  withAdminClient(async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1);

const baseEnv = (db: { url: string; prefix: string }) => ({
  DATABASE_URL: db.url,
  REDIS_URL,
  QUEUE_PREFIX: db.prefix,
  JWT_SECRET: 'server-test-secret-that-is-long-enough-0123456789',
});

/** A machine with Node and Postgres only: no REDIS_URL (empty counts as unset), no QUEUE_BACKEND. */
const withoutRedis = (db: { url: string; prefix: string }) => ({ ...baseEnv(db), REDIS_URL: '', QUEUE_BACKEND: '' });

async function queueMigrations(name: string): Promise<number[]> {
  const rows = await queryDatabase<{ version: number }>(
    name,
    `SELECT version FROM ${QUEUE_SCHEMA}.migration ORDER BY 1`,
  );
  return rows.map((r) => r.version);
}

t.test('the server creates and migrates a missing database, serves, and exits 0 on SIGTERM', async (t) => {
  const db = await freshDatabase(t);
  t.notOk(await databaseExists(db.name), 'the database does not exist before start');
  const server = startServer(t, baseEnv(db), await freePort());
  await waitUntilReady(server);

  t.ok(await databaseExists(db.name), 'the database was created');
  t.same(await appliedMigrations(db.name), Object.keys(migrations).sort(), 'and fully migrated');
  t.ok(server.logs.some((l) => l.msg === 'database created'));
  const steps = (msg: string) => server.logs.filter((l) => l.msg === msg).map((l) => l.migration);
  t.same(steps('applying migration'), Object.keys(migrations), 'each migration reported as it starts');
  t.same(steps('migration applied'), Object.keys(migrations), 'and as it ends');

  // It really serves the API: register over HTTP.
  const res = await fetch(`http://127.0.0.1:${server.port}/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ handle: 'first_user', password: 'correct horse battery' }),
  });
  t.equal(res.status, 201);
  t.ok(res.headers.get('x-request-id'));

  server.child.kill('SIGTERM');
  t.equal(await server.exited, 0, `exit code 0 after SIGTERM; stderr: ${server.stderr()}`);
  t.ok(
    server.logs.some((l) => l.msg === 'shutting down'),
    'it logged a graceful shutdown',
  );
});

t.test('two processes starting at once on one fresh database both come up; migrations run once', async (t) => {
  // Without Redis, so the queue tables are created by both processes at once too.
  const db = await freshDatabase(t);
  const [portA, portB] = [await freePort(), await freePort()];
  const servers = [startServer(t, withoutRedis(db), portA), startServer(t, withoutRedis(db), portB)];
  await Promise.all(servers.map((s) => waitUntilReady(s)));

  t.same(await appliedMigrations(db.name), Object.keys(migrations).sort(), 'each migration recorded once');
  t.same(
    await queueMigrations(db.name),
    Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1),
    "and each of BullMQ's",
  );
  const migrated = servers.filter((s) => s.logs.some((l) => l.msg === 'migrations applied'));
  t.equal(migrated.length, 1, 'exactly one process applied the migrations');
  const created = servers.filter((s) => s.logs.some((l) => l.msg === 'database created'));
  t.equal(created.length, 1, 'exactly one process created the database');

  for (const server of servers) server.child.kill('SIGTERM');
  t.same(await Promise.all(servers.map((s) => s.exited)), [0, 0]);
});

t.test(
  'with MIGRATE_ON_START=false a process refuses a database behind the code, and starts once it is migrated',
  async (t) => {
    const db = await freshDatabase(t);
    const env = { ...baseEnv(db), MIGRATE_ON_START: 'false' };
    const missing = startServer(t, env, await freePort());
    t.equal(await missing.exited, 1, 'no database: start-up fails');
    t.match(missing.stderr(), /the database does not exist and MIGRATE_ON_START=false: run `npm run migrate`/);
    t.notOk(await databaseExists(db.name), 'and creates nothing');

    await withAdminClient((c) => c.query(`CREATE DATABASE ${db.name}`));
    const behind = startServer(t, env, await freePort());
    t.equal(await behind.exited, 1, 'an empty database: start-up fails');
    t.match(behind.stderr(), /the database lacks \d+ migration\(s\) \(0001_foundation, /);
    t.same(await appliedMigrations(db.name).catch(() => []), [], 'and migrates nothing');

    // The deploy step.
    const migrating = createDb(db.url, 1);
    await migrateToLatest(migrating);
    await migrating.destroy();
    const server = startServer(t, env, await freePort());
    await waitUntilReady(server);
    t.notOk(
      server.logs.some((l) => l.msg === 'applying migration'),
      'a migrated database: the process starts without migrating',
    );
    server.child.kill('SIGTERM');
    t.equal(await server.exited, 0);
  },
);

t.test('with no Redis at all: queues in Postgres, worked by the same process; rate limits per process', async (t) => {
  const db = await freshDatabase(t);
  const server = startServer(
    t,
    { ...withoutRedis(db), RATE_LIMIT_MAX: '4', SWEEP_INTERVAL_SECONDS: '1' },
    await freePort(),
  );
  await waitUntilReady(server);
  t.ok(
    server.logs.some((l) => l.msg === 'queue tables ready' && l.schema === QUEUE_SCHEMA),
    "BullMQ's tables were created in their own schema",
  );
  const api = `http://127.0.0.1:${server.port}`;
  const registered = await fetch(`${api}/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ handle: 'no_redis_user', password: 'correct horse battery' }),
  });
  t.equal(registered.status, 201);
  const { accessToken } = (await registered.json()) as { accessToken: string };
  const headers = { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' };
  const circle = await fetch(`${api}/v1/circles`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name: 'No Redis', joinPolicy: 'open' }),
  });
  t.equal(circle.status, 201, 'a change with an outbox event, and the first of 4 requests in the budget');

  // The budget holds in this process: of 6 requests at once, the 3 left in it are admitted.
  const burst = await Promise.all(Array.from({ length: 6 }, () => fetch(`${api}/v1/me`, { headers })));
  t.same(burst.map((r) => r.status).sort(), [200, 200, 200, 429, 429, 429]);

  // The worker role in the same process runs the schedules from BullMQ's tables: the 1 s outbox
  // relay marks the circle's event relayed.
  const schedulers = await queryDatabase<{ n: number }>(
    db.name,
    `SELECT count(*)::int AS n FROM ${QUEUE_SCHEMA}.scheduler`,
  );
  t.ok(schedulers[0]!.n >= 5, `the maintenance schedulers are rows (${schedulers[0]!.n})`);
  const events = await queryDatabase<{ type: string }>(db.name, 'SELECT type FROM events');
  t.same(
    events.map((e) => e.type),
    ['circle.created'],
  );
  const unrelayed = async () =>
    (await queryDatabase<{ n: number }>(db.name, 'SELECT count(*)::int AS n FROM events WHERE relayed_at IS NULL'))[0]!
      .n;
  await waitFor(async () => (await unrelayed()) === 0, 30_000);
  t.equal(await unrelayed(), 0, 'every event was relayed by a job from the Postgres queue');
  // Readiness probes have 2 s deadlines a loaded machine can miss: wait for it, as a probe retries.
  const ready = await waitFor(async () => (await fetch(`${api}/readyz`)).status === 200, 20_000);
  t.ok(ready, 'ready without Redis');
  t.notOk(
    server.logs.some((l) => /redis/i.test(JSON.stringify(l))),
    'nothing in the logs mentions Redis',
  );

  server.child.kill('SIGTERM');
  t.equal(await server.exited, 0, `exit code 0 after SIGTERM; stderr: ${server.stderr()}`);
});

t.test('an invalid setting stops start-up with exit code 1 and names the setting', async (t) => {
  const db = await freshDatabase(t);
  const server = startServer(t, { ...baseEnv(db), ROLE: 'everything' }, await freePort());
  t.equal(await server.exited, 1);
  t.match(server.stderr(), /invalid setting ROLE="everything"/);
  t.notOk(await databaseExists(db.name), 'nothing was created');
});

t.test('with DATABASE_URL but no JWT_SECRET start-up stops with one line naming it', async (t) => {
  const db = await freshDatabase(t);
  const server = startServer(t, { ...baseEnv(db), JWT_SECRET: '' }, await freePort());
  t.equal(await server.exited, 1);
  t.equal(
    server.stderr(),
    'circle-actions: missing setting JWT_SECRET: at least 32 random characters (generated only when DATABASE_URL is unset)\n',
  );
  t.notOk(await databaseExists(db.name), 'nothing was created');
});
