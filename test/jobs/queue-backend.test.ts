import { randomBytes } from 'node:crypto';
import { LATEST_SCHEMA_VERSION } from 'bullmq';
import { pino } from 'pino';
import pg from 'pg';
import t, { type Test } from 'tap';
import {
  QUEUE_SCHEMA,
  openQueueConnection,
  prepareQueueStore,
  type QueueStoreSettings,
} from '../../src/jobs/queue-backend.js';
import { Queues, storedJobId } from '../../src/jobs/queues.js';
import { createTestEnv, queueBackendEnv } from '../helper.js';
import { TEMPLATE_DB, databaseUrl, withAdminClient } from '../setup/test-database.js';

// The postgres queue backend's own promises: its tables are created once however many processes
// start at once, a store without them is not ready, and a producer whose store was unreachable
// when it was first used recovers when the store comes back.

const silent = pino({ level: 'silent' });

/** A database name nobody has created yet; dropped after the test. */
function unusedDatabase(t: Test): { name: string; config: QueueStoreSettings & { queuePrefix: string } } {
  const name = `ca_test_qb_${randomBytes(6).toString('hex')}`;
  t.teardown(() => withAdminClient((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)));
  const config = {
    queueBackend: 'postgres',
    databaseUrl: databaseUrl(name),
    redisUrl: null,
    queuePrefix: 'ca',
  } as const;
  return { name, config };
}

async function query<R extends pg.QueryResultRow>(name: string, text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: databaseUrl(name) });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

t.test('eight starters migrating a fresh database at once all succeed; each migration is applied once', async (t) => {
  const { name, config } = unusedDatabase(t);
  await withAdminClient((c) => c.query(`CREATE DATABASE ${name}`));
  const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => prepareQueueStore(config, silent)));
  t.same(
    outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : String(o.reason))),
    Array(8).fill('ok'),
  );
  const versions = await query<{ version: number }>(name, `SELECT version FROM ${QUEUE_SCHEMA}.migration ORDER BY 1`);
  t.same(
    versions.map((v) => v.version),
    Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1),
    'every version recorded exactly once',
  );
  t.same(
    await query(name, `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`),
    [{ n: 0 }],
    "nothing outside BullMQ's schema",
  );

  // And the store works: a job added is there to be read back.
  const connection = openQueueConnection(config, 'worker');
  const queues = new Queues(connection, config.queuePrefix);
  t.teardown(async () => {
    await queues.close();
    await connection.close();
  });
  await connection.ping();
  await queues.add('maintenance', { task: 'relay-outbox' }, { jobId: 'after:migration' });
  t.same((await queues.get('maintenance').getJob(storedJobId('after:migration')))?.data, { task: 'relay-outbox' });
  await prepareQueueStore(config, silent);
  t.same(await query(name, `SELECT count(*)::int AS n FROM ${QUEUE_SCHEMA}.migration`), [{ n: LATEST_SCHEMA_VERSION }]);
  t.ok(await queues.get('maintenance').getJob(storedJobId('after:migration')), 'migrating again changed nothing');
});

t.test('a database without the queue tables is not ready', async (t) => {
  const { name, config } = unusedDatabase(t);
  await withAdminClient((c) => c.query(`CREATE DATABASE ${name}`));
  const connection = openQueueConnection(config, 'request');
  t.teardown(() => connection.close());
  await t.rejects(connection.ping(), { name: 'SchemaMigrationRequiredError' });
  t.equal(await connection.waitUntilReady(2_000), false);
  await prepareQueueStore(config, silent);
  await connection.ping();
  t.equal(await connection.waitUntilReady(2_000), true);
});

t.test('a producer first used while its database was unreachable works once the database is there', async (t) => {
  // BullMQ's postgres backend checks the store once per queue handle and keeps a failure for
  // good; Queues must build a fresh handle instead of failing every enqueue from then on.
  const { name, config } = unusedDatabase(t);
  const connection = openQueueConnection(config, 'request');
  const queues = new Queues(connection, config.queuePrefix, true);
  t.teardown(async () => {
    await queues.close();
    await connection.close();
  });
  await t.rejects(queues.add('maintenance', { task: 'relay-outbox' }, { jobId: 'early' }), /does not exist/);
  await t.rejects(queues.add('maintenance', { task: 'relay-outbox' }, { jobId: 'early' }), /does not exist/);

  await withAdminClient((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DB}`));
  await queues.add('maintenance', { task: 'relay-outbox' }, { jobId: 'late' });
  t.ok(await queues.get('maintenance').getJob('late'), 'the job was enqueued');
  t.equal(await queues.get('maintenance').getJob('early'), undefined, 'the failed ones were not');
});

t.test('on the redis backend, start-up checks the eviction policy and readiness follows the connection', async (t) => {
  const { config } = await createTestEnv(t, queueBackendEnv('redis'));
  const warnings: unknown[] = [];
  await prepareQueueStore(config, { info() {}, warn: (...args: unknown[]) => warnings.push(args) });
  t.notMatch(JSON.stringify(warnings), /could not check/, 'it reached Redis');
  const unreached: unknown[] = [];
  await prepareQueueStore(
    { ...config, redisUrl: 'redis://127.0.0.1:1' },
    { info() {}, warn: (...args: unknown[]) => unreached.push(args) },
  );
  t.match(JSON.stringify(unreached), /could not check Redis maxmemory-policy/);

  const connection = openQueueConnection(config, 'request');
  t.teardown(() => connection.close());
  t.equal(connection.backend, 'redis');
  t.equal(await connection.waitUntilReady(2_000), true);
  t.equal(connection.unavailable(), null);
  await connection.ping();
  const unreachable = openQueueConnection({ ...config, redisUrl: 'redis://127.0.0.1:1' }, 'request');
  t.teardown(() => unreachable.close());
  t.equal(await unreachable.waitUntilReady(200), false);
  t.match(unreachable.unavailable(), /^Redis is /);
});

t.test('on the redis backend, a queue handle whose start failed is replaced', async (t) => {
  // BullMQ readies a handle once: it waits for the connection, then asks Redis for its version,
  // and a failure of that command (the 2 s command limit of a request connection, on a loaded
  // machine) fails the handle for good. An API process whose handle failed so failed every
  // enqueue and metrics read through it until it was restarted.
  const { config } = await createTestEnv(t, queueBackendEnv('redis'));
  const connection = openQueueConnection(config, 'request');
  const queues = new Queues(connection, config.queuePrefix, true);
  t.teardown(async () => {
    await queues.close();
    await connection.close();
  });
  if (connection.backend !== 'redis') throw new Error('a redis connection was expected');
  t.equal(await connection.waitUntilReady(10_000), true);
  // The version check times out, once: a fault injected on the real connection.
  const info = connection.redis.info.bind(connection.redis);
  connection.redis.info = (() => {
    connection.redis.info = info;
    return Promise.reject(new Error('Command timed out'));
  }) as typeof info;
  const early = queues.get('maintenance');
  await t.rejects(early.waitUntilReady(), /Command timed out/, 'the handle built then has failed for good');
  await t.rejects(early.getJobCounts('waiting'), /Command timed out/, 'and fails every call');
  await queues.add('maintenance', { task: 'relay-outbox' }, { jobId: 'after' });
  t.not(queues.get('maintenance'), early, 'a fresh handle replaced it');
  t.ok(await queues.get('maintenance').getJob('after'), 'which enqueues');
  t.equal((await queues.get('maintenance').getJobCounts('waiting')).waiting, 1, 'and reads the queue');
});
