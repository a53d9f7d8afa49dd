import type { Job } from 'bullmq';
import type { AppContext } from '../context.js';
import type { QueueName, QueuePayloads } from './queues.js';
import { openWorker, type QueueConnection } from './queue-backend.js';

/** What a job processor gets to work with: the same context as the services. */
export type JobContext = AppContext;

/** A processor must be safe to run twice for the same job: deliveries are at-least-once. */
export type Processor<N extends QueueName> = (payload: QueuePayloads[N], ctx: JobContext, job: Job) => Promise<unknown>;

export type ProcessorMap = { [N in QueueName]: Processor<N> };

/** Hears every job run of this process's workers: for metrics. Must not throw. */
export interface JobObserver {
  /** A run of a job carrying `payload` that returned `result` after `seconds`. */
  completed?(queue: QueueName, payload: unknown, result: unknown, seconds: number): void;
  /** A run that threw after `seconds`. */
  failed?(queue: QueueName, seconds: number): void;
}

export interface WorkerOptions {
  concurrency?: Partial<Record<QueueName, number>>;
  observers?: JobObserver[];
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
    const observers = options.observers ?? [];
    const run = async (job: Job) => {
      const started = performance.now();
      try {
        const result = await processor(job.data as QueuePayloads[QueueName], ctx, job);
        const seconds = (performance.now() - started) / 1000;
        for (const observer of observers) observer.completed?.(name, job.data, result, seconds);
        return result;
      } catch (err) {
        const seconds = (performance.now() - started) / 1000;
        for (const observer of observers) observer.failed?.(name, seconds);
        throw err;
      }
    };
    const worker = openWorker(name, run, connection, {
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
