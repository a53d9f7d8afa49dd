import type { JobsOptions, Queue } from 'bullmq';
import { withDeadline } from '../infra/deadline.js';
import { isDefunct, openQueue, type QueueConnection } from './queue-backend.js';

/**
 * Every queue the service uses and the payload its jobs carry. Producers and processors both type
 * against this map, so a job can't be enqueued with a payload its processor does not expect.
 */
export interface QueuePayloads {
  /** Periodic repair and housekeeping, driven by job schedulers (see src/jobs/schedules.ts). */
  maintenance: { task: MaintenanceTask };
  /** Delayed until the end of a second in which leases end; expires every overdue lease (src/claims). */
  'claim-expiry': { dueAt: number };
  /** Delayed until a submission's review window closes; accepts it if still unreviewed (src/reviews). */
  'review-deadline': { submissionId: string };
  /** One job per settlement, id = settlement id (src/settlements). */
  settlements: { settlementId: string };
  /** Delayed until a challenge's last day ends; closes it and sums it up (src/challenges). */
  'challenge-closing': { challengeId: string };
  /**
   * One attempt of a webhook message, id = message, attempt number and due time (src/webhooks).
   * `dueAt` (ms) is the message's next_attempt_at the job was made for; jobs of earlier versions
   * carry none.
   */
  'webhook-delivery': { circleId: string; messageId: string; attempt: number; dueAt?: number };
  /** Folds a circle's new activity rows into its daily rollups, or rebuilds them (src/circle-health). */
  'circle-rollups': { circleId: string };
}

export type MaintenanceTask =
  | 'purge-idempotency-keys'
  | 'purge-ended-sessions'
  | 'expire-overdue-claims'
  | 'accept-overdue-submissions'
  | 'relay-outbox'
  | 'requeue-unfinished-settlements'
  | 'close-ended-challenges'
  | 'notice-missed-challenge-days'
  | 'remind-ending-leases'
  | 'requeue-overdue-webhook-messages'
  | 'fold-circle-rollups';

export type QueueName = keyof QueuePayloads;

/** Every queue by name, for what walks them all (metrics, the operator dashboard). */
export const QUEUE_NAMES = [
  'maintenance',
  'claim-expiry',
  'review-deadline',
  'settlements',
  'challenge-closing',
  'webhook-delivery',
  'circle-rollups',
] as const satisfies readonly QueueName[];
// A queue added to QueuePayloads but not to QUEUE_NAMES fails to compile here.
const everyQueueNamed: Exclude<QueueName, (typeof QUEUE_NAMES)[number]> extends never ? true : never = true;
void everyQueueNamed;

export interface EnqueueOptions extends Omit<JobsOptions, 'jobId'> {
  /** Business key: enqueueing the same key twice yields one job (idempotent producers). */
  jobId: string;
}

/**
 * The id BullMQ stores a job under, for its business key. BullMQ reserves ':' in custom job ids
 * and our business keys use it as a separator. Everything that looks a job up by its key goes
 * through this, so the encoding lives in one place.
 */
export const storedJobId = (businessKey: string): string => businessKey.replaceAll(':', '_');

const ENQUEUE_TIMEOUT_MS = 2_000;

/**
 * The producer side, on either queue backend. With `failFast` (request paths) an enqueue fails at
 * once while the store is known to be unreachable, and within ENQUEUE_TIMEOUT_MS otherwise: BullMQ
 * itself would wait for the connection to come back, holding the request. Callers treat a failed
 * enqueue as "the sweep will do it", or roll back and try again later (the outbox relay).
 */
export class Queues {
  private readonly queues: Map<QueueName, Queue>;

  constructor(
    private readonly connection: QueueConnection,
    readonly prefix: string,
    private readonly failFast = false,
    /** Another producer whose queue handles this one shares (see failingFast). */
    sharing?: Queues,
  ) {
    this.queues = sharing ? sharing.queues : new Map();
  }

  /**
   * This producer, failing fast, over the same queue handles. For enqueues made while holding a
   * transaction: waiting out an outage there would pin row locks, a connection and the vacuum
   * horizon for as long as it lasts, where failing rolls the work back for a later run to redo.
   */
  failingFast(): Queues {
    return this.failFast ? this : new Queues(this.connection, this.prefix, true, this);
  }

  get(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (queue && isDefunct(queue)) {
      // Its store was unreachable when it was built, and it would keep failing: build it again.
      queue.close().catch(() => {});
      queue = undefined;
    }
    if (!queue) {
      queue = openQueue(name, this.connection, this.prefix);
      this.queues.set(name, queue);
    }
    return queue;
  }

  async add<N extends QueueName>(name: N, payload: QueuePayloads[N], options: EnqueueOptions): Promise<void> {
    const jobOptions = { ...options, jobId: storedJobId(options.jobId) };
    if (!this.failFast) {
      await this.get(name).add(name, payload, jobOptions);
      return;
    }
    const unavailable = this.connection.unavailable();
    if (unavailable) throw new Error(`${unavailable}; job ${options.jobId} not enqueued`);
    await withDeadline(
      this.get(name).add(name, payload, jobOptions),
      ENQUEUE_TIMEOUT_MS,
      `enqueueing ${options.jobId}`,
    );
  }

  /**
   * Enqueues again a job a sweep found its work undone for. A plain add is a no-op while BullMQ
   * keeps a finished job under the key (one that failed after all its attempts, or stalled too
   * often as its workers died, is kept for days), so that job is retried in place, its attempts
   * counted afresh. How often it was retried so is kept in its data (`requeued`): a job that
   * kills every worker running it must not be retried forever, so past `maxRetries` nothing is
   * done and 'exhausted' tells the caller to give the work up.
   */
  async requeue<N extends QueueName>(
    name: N,
    payload: QueuePayloads[N],
    options: EnqueueOptions,
    maxRetries = Number.POSITIVE_INFINITY,
  ): Promise<'added' | 'retried' | 'exhausted'> {
    const job = await this.get(name).getJob(storedJobId(options.jobId));
    const state = job ? await job.getState() : undefined;
    if (job && (state === 'failed' || state === 'completed')) {
      const requeued = Number((job.data as { requeued?: unknown }).requeued ?? 0) || 0;
      if (requeued >= maxRetries) return 'exhausted';
      await job.updateData({ ...job.data, requeued: requeued + 1 });
      // Refused when another sweep retried it first (it is no longer in that state): as good.
      await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true }).catch(() => {});
      return 'retried';
    }
    await this.add(name, payload, options);
    return 'added';
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
