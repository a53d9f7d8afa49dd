import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRequestRedis, createWorkerRedis } from '../infra/redis.js';

// The one place that knows the queues run on BullMQ over Redis: the connections, and the options
// every queue and worker is built with. Producers (Queues), workers (startWorkers) and the
// repeating schedules (through Queues) are all built here, so another backend is chosen here.

/**
 * A connection for queues. `request`: producers on a request path, whose commands fail at once
 * while Redis is unreachable. `worker`: workers and their producers, whose commands wait through
 * an outage (maxRetriesPerRequest: null, as BullMQ's production guide requires).
 */
export function openQueueConnection(url: string, use: 'request' | 'worker'): Redis {
  return use === 'request' ? createRequestRedis(url) : createWorkerRedis(url);
}

/** A producer's handle on one queue, with the retry and retention every job gets. */
export function openQueue(name: string, connection: Redis, prefix: string): Queue {
  const queue = new Queue(name, {
    connection,
    prefix,
    defaultJobOptions: {
      attempts: 10,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: { age: 3600, count: 10_000 },
      removeOnFail: { age: 7 * 86400 },
    },
  });
  // Connection errors are reported by the calls that hit them; don't let the emitter crash us.
  queue.on('error', () => {});
  return queue;
}

/** A consumer of one queue. */
export function openWorker(
  name: string,
  process: (job: Job) => Promise<unknown>,
  connection: Redis,
  options: { prefix: string; concurrency: number; lockSeconds: number },
): Worker {
  return new Worker(name, process, {
    connection,
    prefix: options.prefix,
    concurrency: options.concurrency,
    // A worker that dies mid-job stops renewing its lock; after lockDuration the stalled-job
    // check hands the job to another worker, so a crash delays work by at most about this much.
    lockDuration: options.lockSeconds * 1000,
    stalledInterval: options.lockSeconds * 1000,
  });
}
