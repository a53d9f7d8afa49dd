import { sql } from 'kysely';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { processors, startWorkerRole } from '../../src/worker.js';
import { startWorkers } from '../../src/jobs/worker-runtime.js';
import { Queues, storedJobId } from '../../src/jobs/queues.js';
import { openQueueConnection } from '../../src/jobs/queue-backend.js';
import type { Db } from '../../src/infra/postgres.js';
import { createTestEnv, onEachQueueBackend, queueBackendEnv, type QueueBackendName } from '../helper.js';
import { finishedJob } from '../marketplace-helpers.js';

// The maintenance queue run by real BullMQ workers on each queue backend, against the test's own
// database.

const silent = pino({ level: 'silent' });

/** The production processors on real workers, without the repeating schedules, so only jobs the test adds run. */
async function workersFor(t: Test, backend: QueueBackendName) {
  const env = await createTestEnv(t, queueBackendEnv(backend));
  const consumer = openQueueConnection(env.config, 'worker');
  const producer = openQueueConnection(env.config, 'worker');
  const queues = new Queues(producer, env.config.queuePrefix);
  const running = await startWorkers(consumer, { db: env.db, queues, config: env.config, log: silent }, processors);
  t.teardown(async () => {
    await running.close();
    await queues.close();
    await consumer.close();
    await producer.close();
  });
  return { ...env, queues, queue: queues.get('maintenance') };
}

onEachQueueBackend(t, 'purge-idempotency-keys deletes expired keys and keeps fresh ones', async (t, backend) => {
  const { db, queues, queue } = await workersFor(t, backend);
  const user = '00000000-0000-4000-8000-000000000001';
  await sql`
    INSERT INTO idempotency_keys (user_id, key, request_hash, response_status, created_at) VALUES
      (${user}, 'fresh', '\\x00', 201, now()),
      (${user}, 'almost-a-day', '\\x00', 201, now() - interval '23 hours'),
      (${user}, 'in-progress', '\\x00', NULL, now() - interval '10 minutes'),
      (${user}, 'expired', '\\x00', 201, now() - interval '25 hours'),
      (${user}, 'long-expired', '\\x00', 409, now() - interval '30 days')`.execute(db);

  await queues.add('maintenance', { task: 'purge-idempotency-keys' }, { jobId: 'purge:test:1' });
  const job = await finishedJob(queue, storedJobId('purge:test:1'));
  t.equal(job.failedReason, undefined, 'the job succeeded');
  const keys = await db.selectFrom('idempotency_keys').select('key').orderBy('key').execute();
  t.same(
    keys.map((k) => k.key),
    ['almost-a-day', 'fresh', 'in-progress'],
  );
  t.same(job.returnvalue, { purged: 2 });

  // Safe to run again: nothing more to delete, fresh keys untouched.
  await queues.add('maintenance', { task: 'purge-idempotency-keys' }, { jobId: 'purge:test:2' });
  const again = await finishedJob(queue, storedJobId('purge:test:2'));
  t.same(again.returnvalue, { purged: 0 });
  t.equal((await db.selectFrom('idempotency_keys').select('key').execute()).length, 3);
});

onEachQueueBackend(
  t,
  'purge-ended-sessions deletes expired and revoked refresh tokens, keeps the rest',
  async (t, backend) => {
    const { db, queues, queue } = await workersFor(t, backend);
    const [user] = await sql<{ id: string }>`
    INSERT INTO users (handle, password_hash, display_name) VALUES ('sleeper', 'x', 'Sleeper') RETURNING id`
      .execute(db)
      .then((r) => r.rows);
    const live = '00000000-0000-4000-8000-00000000000a';
    const ended = '00000000-0000-4000-8000-00000000000b';
    // A live session (its current token, one rotated an hour ago, one rotated long enough ago to have
    // expired), and an ended one (revoked a minute ago).
    await sql`
    INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, rotated_at, revoked_at) VALUES
      (${user!.id}, ${live}, '\\x01', now() + interval '30 days', NULL, NULL),
      (${user!.id}, ${live}, '\\x02', now() + interval '29 days', now() - interval '1 hour', NULL),
      (${user!.id}, ${live}, '\\x03', now() - interval '1 minute', now() - interval '31 days', NULL),
      (${user!.id}, ${ended}, '\\x04', now() + interval '20 days', NULL, now() - interval '1 minute'),
      (${user!.id}, ${ended}, '\\x05', now() + interval '19 days', now() - interval '1 day', now() - interval '1 minute')`.execute(
      db,
    );
    const tokens = async () =>
      (
        await sql<{ hash: string }>`SELECT encode(token_hash, 'hex') AS hash FROM refresh_tokens ORDER BY 1`.execute(db)
      ).rows.map((r) => r.hash);

    await queues.add('maintenance', { task: 'purge-ended-sessions' }, { jobId: 'sessions:1' });
    const job = await finishedJob(queue, storedJobId('sessions:1'));
    t.equal(job.failedReason, undefined, 'the job succeeded');
    t.same(job.returnvalue, { purged: 3 });
    t.same(
      await tokens(),
      ['01', '02'],
      "the live session's current token and the rotated one still detecting reuse stay",
    );

    await queues.add('maintenance', { task: 'purge-ended-sessions' }, { jobId: 'sessions:2' });
    t.same((await finishedJob(queue, storedJobId('sessions:2'))).returnvalue, { purged: 0 }, 'nothing more to purge');
    t.same(await tokens(), ['01', '02']);
  },
);

const keys = async (db: Db) => (await db.selectFrom('idempotency_keys').select('key').execute()).map((k) => k.key);

onEachQueueBackend(t, 'a job id is a business key: adding it twice runs the job once', async (t, backend) => {
  const { db, queues, queue } = await workersFor(t, backend);
  const user = '00000000-0000-4000-8000-000000000002';
  await queues.add('maintenance', { task: 'purge-idempotency-keys' }, { jobId: 'purge-once' });
  const first = await finishedJob(queue, 'purge-once');
  await sql`INSERT INTO idempotency_keys (user_id, key, request_hash, created_at) VALUES (${user}, 'old', '\\x00', now() - interval '2 days')`.execute(
    db,
  );
  // The store adds a job atomically or finds its id taken: once the add has returned, a second run
  // would be waiting in the queue. None is, and the expired key it would delete is still there.
  await queues.add('maintenance', { task: 'purge-idempotency-keys' }, { jobId: 'purge-once' });
  t.same(await queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized'), {
    waiting: 0,
    delayed: 0,
    active: 0,
    prioritized: 0,
  });
  const second = await queue.getJob('purge-once');
  t.equal(second?.finishedOn, first.finishedOn, 'the same job, not run a second time');
  t.equal(second?.attemptsMade, first.attemptsMade);
  t.same(await keys(db), ['old'], 'the expired key the second run would have purged is still there');

  // The key was expired indeed: a job with another id purges it.
  await queues.add('maintenance', { task: 'purge-idempotency-keys' }, { jobId: 'purge-twice' });
  t.same((await finishedJob(queue, 'purge-twice')).returnvalue, { purged: 1 });
  t.same(await keys(db), []);
});

onEachQueueBackend(t, 'an unknown maintenance task fails at once without retries', async (t, backend) => {
  const { queue } = await workersFor(t, backend);
  await queue.add('maintenance', { task: 'no-such-task' }, { jobId: 'bogus' });
  const job = await finishedJob(queue, 'bogus');
  t.match(job.failedReason, /unknown maintenance task "no-such-task"/);
  t.equal(job.attemptsMade, 1, 'not retried: retrying cannot help');
});

onEachQueueBackend(
  t,
  'the worker role declares the repeating schedules once, however many start',
  async (t, backend) => {
    const { config } = await createTestEnv(t, queueBackendEnv(backend));
    const first = await startWorkerRole(config, silent);
    t.teardown(() => first.close());
    const second = await startWorkerRole(config, silent);
    t.teardown(() => second.close());
    const schedulers = await first.queues.get('maintenance').getJobSchedulers();
    const ids = schedulers.map((s) => s.key).sort();
    t.ok(ids.includes('purge-idempotency-keys'));
    t.equal(new Set(ids).size, ids.length, 'no duplicates');
    t.equal(schedulers.find((s) => s.key === 'purge-idempotency-keys')?.every, 3600_000);
    t.equal(schedulers.find((s) => s.key === 'purge-ended-sessions')?.every, 3600_000);
    for (const scheduler of schedulers) {
      t.match(
        scheduler.template?.opts,
        { attempts: 1, removeOnFail: { count: 1000 } },
        `${scheduler.key}: each run is one attempt, failures kept by count`,
      );
    }
  },
);
