import type { Job } from 'bullmq';
import type { AppContext } from '../context.js';
import type { QueueName, QueuePayloads } from './queues.js';
import { openWorker, type QueueConnection } from './queue-backend.js';

/** What a job processor gets to work with: the same context as the services. */
export type JobContext = AppContext;

/** A processor must be safe to run twice for the same job: deliveries are at-least-once. */
export type Processor<N extends QueueName> = (payload: QueuePayloads[N], ctx: JobContext, job: Job) => Promise<unknown>;

export type ProcessorMap = { [N in QueueName]: Processor<N> };

export interface WorkerOptions {
  concurrency?: Partial<Record<QueueName, number>>;
}

/**
 * Starts one BullMQ worker per queue, on either backend, and waits until each can reach the queue
 * store (through an outage on Redis; a Postgres worker that could not reach it would never
 * recover, so starting fails instead). close() lets running jobs finish before returning.
 */
export async function startWorkers(
  connection: QueueConnection,
  ctx: JobContext,
  processors: ProcessorMap,
  options: WorkerOptions = {},
) {
  const workers = (Object.keys(processors) as QueueName[]).map((name) => {
    const processor = processors[name] as Processor<QueueName>;
    const worker = openWorker(name, (job) => processor(job.data as QueuePayloads[QueueName], ctx, job), connection, {
      prefix: ctx.config.queuePrefix,
      concurrency: options.concurrency?.[name] ?? 4,
      lockSeconds: ctx.config.jobLockSeconds,
    });
    worker.on('failed', (job, err) =>
      ctx.log.warn({ err, queue: name, jobId: job?.id, attempts: job?.attemptsMade }, 'job failed'),
    );
    worker.on('error', (err) => ctx.log.error({ err, queue: name }, 'worker error'));
    return worker;
  });
  const closeAll = () => Promise.all(workers.map((w) => w.close()));
  try {
    await Promise.all(workers.map((w) => w.waitUntilReady()));
  } catch (err) {
    await closeAll();
    throw err;
  }
  return {
    workers,
    async close() {
      await closeAll();
    },
  };
}
