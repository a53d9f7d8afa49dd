import pg from 'pg';
import {
  DEFAULT_SCHEMA,
  Queue,
  Worker,
  assertSchemaCompatibility,
  createPostgresBackend,
  runMigrations,
  type Job,
} from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { BaseLogger } from 'pino';
import { withDeadline } from '../infra/deadline.js';
import { checkEvictionPolicy, createRequestRedis, createWorkerRedis, waitUntilReady } from '../infra/redis.js';

// The one place that knows where the queues live: BullMQ over Redis, or BullMQ's PostgreSQL
// backend in the service's own database (QUEUE_BACKEND). The connections, the options every
// queue and worker is built with, readiness, and preparing the store at start-up are all here;
// producers (Queues), workers (startWorkers) and the repeating schedules (through Queues) only
// ever hold a QueueConnection. BullMQ's API is the same on both backends.

export type QueueBackend = Config['queueBackend'];

/** The settings that say where the queue store is. */
export type QueueStoreSettings = Pick<Config, 'queueBackend' | 'databaseUrl' | 'redisUrl'>;

/**
 * The schema BullMQ's tables live in on the postgres backend, beside the service's tables in
 * `public`. BullMQ's own default: its schema check reads this schema for pools it did not build.
 */
export const QUEUE_SCHEMA = DEFAULT_SCHEMA;

/** Who uses a connection: producers on a request path fail fast, workers wait through an outage. */
export type QueueConnectionUse = 'request' | 'worker';

interface QueueConnectionBase {
  readonly backend: QueueBackend;
  /** Why a producer on a request path should not even try now, or null to go ahead. */
  unavailable(): string | null;
  /** Waits at most `timeoutMs` for the store to answer; false if it did not. */
  waitUntilReady(timeoutMs: number): Promise<boolean>;
  /** Resolves when the store answers (readiness checks), rejects otherwise. */
  ping(): Promise<void>;
  /** Calls `listener` whenever the connection comes back after losing the store. */
  onReconnect(listener: () => void): void;
  /** Closes the connection (after the queues and workers built on it). */
  close(): Promise<void>;
}

class RedisQueueConnection implements QueueConnectionBase {
  readonly backend = 'redis' as const;

  constructor(readonly redis: Redis) {}

  unavailable(): string | null {
    // ioredis knows whether its socket is up: a request need not wait to learn Redis is down.
    return this.redis.status === 'ready' ? null : `Redis is ${this.redis.status}`;
  }

  waitUntilReady(timeoutMs: number): Promise<boolean> {
    return waitUntilReady(this.redis, timeoutMs);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  onReconnect(listener: () => void): void {
    this.redis.on('ready', listener);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

// Postgres connections are a budget every process shares (max_connections), and the queues' load
// is light: a job per second per kind at most in steady state, one settlement at a time.
/** Connections per worker on Postgres: its LISTEN connection, held while it waits, and one for queries. */
const WORKER_POOL_SIZE = 2;
/** Connections shared by a process's producers on Postgres. */
const PRODUCER_POOL_SIZE = 2;

class PostgresQueueConnection implements QueueConnectionBase {
  readonly backend = 'postgres' as const;
  /** The producers' pool; each worker gets a pool of its own (see workerPool). */
  readonly pool: pg.Pool;
  private readonly pools: pg.Pool[] = [];

  constructor(
    private readonly databaseUrl: string,
    private readonly use: QueueConnectionUse,
    private readonly onError: (err: Error) => void,
  ) {
    this.pool = this.openPool(PRODUCER_POOL_SIZE);
  }

  /**
   * A pool for one worker. BullMQ checks a worker's LISTEN connection out of the pool it is
   * given and holds it, so workers sharing a pool would starve each other's queries.
   */
  workerPool(): pg.Pool {
    return this.openPool(WORKER_POOL_SIZE);
  }

  private openPool(max: number): pg.Pool {
    const pool = new pg.Pool({
      connectionString: this.databaseUrl,
      max,
      // BullMQ's statements name its tables unqualified: on pools it did not build, the caller
      // points search_path at its schema.
      options: `-c search_path=${QUEUE_SCHEMA}`,
      application_name: 'circle-actions-queues',
      // Lets a LISTEN connection dropped without a word be noticed, so BullMQ may block long.
      keepAlive: true,
      // A request never waits long for a free connection; a worker waits as long as it takes.
      connectionTimeoutMillis: this.use === 'request' ? 2_000 : 0,
      idleTimeoutMillis: 30_000,
    });
    // Idle clients that lose their server emit on the pool, checked-out ones (LISTEN) on the
    // client; unheard, either would end the process. The pool replaces them itself.
    pool.on('error', this.onError);
    pool.on('connect', (client) => client.on('error', this.onError));
    this.pools.push(pool);
    return pool;
  }

  unavailable(): string | null {
    // A pool has no connection state to consult; the enqueue's own time limit bounds the wait.
    return null;
  }

  waitUntilReady(timeoutMs: number): Promise<boolean> {
    return withDeadline(
      this.ping().then(
        () => true,
        () => false,
      ),
      timeoutMs,
      () => false,
    );
  }

  async ping(): Promise<void> {
    // One read, no locks: the server answers and BullMQ's tables are there, at a version this
    // BullMQ understands.
    await assertSchemaCompatibility(this.pool, QUEUE_SCHEMA);
  }

  onReconnect(): void {
    // Nothing to listen for: a pool opens connections per query, so the next query after an
    // outage simply works again (the periodic checks in schedules.ts still run).
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((pool) => pool.end()));
  }
}

/** A process's connection to the queue store; build queues and workers on it with openQueue/openWorker. */
export type QueueConnection = RedisQueueConnection | PostgresQueueConnection;

/**
 * Opens a connection to the configured queue store. `request`: producers on a request path, whose
 * commands fail at once (Redis) or within 2 s (Postgres) while the store is unreachable.
 * `worker`: workers and their producers, whose commands wait through an outage
 * (maxRetriesPerRequest: null on Redis, as BullMQ's production guide requires).
 * `onError` hears connection errors, which surface again on the commands they fail.
 */
export function openQueueConnection(
  config: QueueStoreSettings,
  use: QueueConnectionUse,
  onError: (err: Error) => void = () => {},
): QueueConnection {
  if (config.queueBackend === 'postgres') return new PostgresQueueConnection(config.databaseUrl, use, onError);
  // loadConfig refuses QUEUE_BACKEND=redis without REDIS_URL.
  const url = config.redisUrl as string;
  const redis = use === 'request' ? createRequestRedis(url) : createWorkerRedis(url);
  redis.on('error', onError);
  return new RedisQueueConnection(redis);
}

// Handles whose store could not be reached when they were built. BullMQ readies each handle once
// and keeps a failure for good, on either backend: on Postgres its check of the store, on Redis
// its wait for a connection still opening (an error meanwhile, a connect that timed out). Such a
// handle never works again.
const defunctQueues = new WeakSet<Queue>();

/** True for a queue handle that can never work again and must be replaced by a fresh one. */
export function isDefunct(queue: Queue): boolean {
  return defunctQueues.has(queue);
}

const jobOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 7 * 86400 },
} as const;

/**
 * A producer's handle on one queue, with the retry and retention every job gets. The key prefix
 * namespaces a Redis; on Postgres the database (and QUEUE_SCHEMA) is the namespace.
 */
export function openQueue(name: string, connection: QueueConnection, prefix: string): Queue {
  let queue: Queue;
  if (connection.backend === 'redis') {
    queue = new Queue(name, { connection: connection.redis, prefix, defaultJobOptions: jobOptions });
  } else {
    // Typed as a Redis-backed Queue for the callers: the API is the same, only getBackend() differs.
    queue = new Queue(
      name,
      { connection: connection.pool, defaultJobOptions: jobOptions },
      createPostgresBackend,
    ) as unknown as Queue;
  }
  queue.waitUntilReady().catch(() => defunctQueues.add(queue));
  // Connection errors are reported by the calls that hit them; don't let the emitter crash us.
  queue.on('error', () => {});
  return queue;
}

/** A consumer of one queue. */
export function openWorker(
  name: string,
  process: (job: Job) => Promise<unknown>,
  connection: QueueConnection,
  options: { prefix: string; concurrency: number; lockSeconds: number },
): Worker {
  const common = {
    concurrency: options.concurrency,
    // A worker that dies mid-job stops renewing its lock; after lockDuration the stalled-job
    // check hands the job to another worker, so a crash delays work by at most about this much.
    lockDuration: options.lockSeconds * 1000,
    stalledInterval: options.lockSeconds * 1000,
  };
  if (connection.backend === 'redis')
    return new Worker(name, process, { ...common, connection: connection.redis, prefix: options.prefix });
  return new Worker(
    name,
    process,
    { ...common, connection: connection.workerPool() },
    createPostgresBackend,
  ) as unknown as Worker;
}

/**
 * Readies the queue store at start-up, before any queue or worker opens. Postgres: creates or
 * upgrades BullMQ's tables in QUEUE_SCHEMA (BullMQ serialises concurrent migrators with an
 * advisory lock, so processes starting at once are safe). Redis: warns when it may evict keys,
 * which would lose queued jobs in silence.
 */
export async function prepareQueueStore(
  config: QueueStoreSettings,
  log: Pick<BaseLogger, 'info' | 'warn'>,
): Promise<void> {
  if (config.queueBackend === 'postgres') {
    const client = new pg.Client({ connectionString: config.databaseUrl });
    client.on('error', () => {});
    await client.connect();
    try {
      const version = await runMigrations(client, QUEUE_SCHEMA);
      log.info({ schema: QUEUE_SCHEMA, version }, 'queue tables ready');
    } finally {
      await client.end();
    }
    return;
  }
  const redis = createRequestRedis(config.redisUrl as string, { lazyConnect: true });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const policy = await checkEvictionPolicy(redis);
    if (policy)
      log.warn(`Redis maxmemory-policy is "${policy}": set it to "noeviction" or queued jobs can be silently lost`);
  } catch (err) {
    log.warn({ err }, 'could not check Redis maxmemory-policy');
  } finally {
    redis.disconnect();
  }
}
