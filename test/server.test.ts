import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { migrations } from '../db/migrations/index.js';
import { REDIS_URL, flushPrefix } from './helper.js';
import { databaseUrl, withAdminClient } from './setup/test-database.js';
import {
  freePort,
  spawnServer,
  waitUntilReady as waitUntilServiceReady,
  type ServerProcess,
} from './service-process.js';

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

async function appliedMigrations(name: string): Promise<string[]> {
  const pg = await import('pg');
  const client = new pg.default.Client({ connectionString: databaseUrl(name) });
  await client.connect();
  try {
    const rows = await client.query<{ name: string }>('SELECT name FROM kysely_migration ORDER BY name');
    return rows.rows.map((r) => r.name);
  } finally {
    await client.end();
  }
}

const databaseExists = (name: string) =>
  withAdminClient(async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1);

const baseEnv = (db: { url: string; prefix: string }) => ({
  DATABASE_URL: db.url,
  REDIS_URL,
  QUEUE_PREFIX: db.prefix,
  JWT_SECRET: 'server-test-secret-that-is-long-enough-0123456789',
});

t.test('the server creates and migrates a missing database, serves, and exits 0 on SIGTERM', async (t) => {
  const db = await freshDatabase(t);
  t.notOk(await databaseExists(db.name), 'the database does not exist before start');
  const server = startServer(t, baseEnv(db), await freePort());
  await waitUntilReady(server);

  t.ok(await databaseExists(db.name), 'the database was created');
  t.same(await appliedMigrations(db.name), Object.keys(migrations).sort(), 'and fully migrated');
  t.ok(server.logs.some((l) => l.msg === 'database created'));

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
  const db = await freshDatabase(t);
  const [portA, portB] = [await freePort(), await freePort()];
  const servers = [startServer(t, baseEnv(db), portA), startServer(t, baseEnv(db), portB)];
  await Promise.all(servers.map((s) => waitUntilReady(s)));

  t.same(await appliedMigrations(db.name), Object.keys(migrations).sort(), 'each migration recorded once');
  const migrated = servers.filter((s) => s.logs.some((l) => l.msg === 'migrations applied'));
  t.equal(migrated.length, 1, 'exactly one process applied the migrations');
  const created = servers.filter((s) => s.logs.some((l) => l.msg === 'database created'));
  t.equal(created.length, 1, 'exactly one process created the database');

  for (const server of servers) server.child.kill('SIGTERM');
  t.same(await Promise.all(servers.map((s) => s.exited)), [0, 0]);
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
