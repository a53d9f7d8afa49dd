import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import type { MaintenanceTask, Queues } from './queues.js';

function intervals(config: Config): Record<MaintenanceTask, number> {
  const sweep = config.sweepIntervalSeconds * 1000;
  return {
    'purge-idempotency-keys': 3600_000,
    'purge-ended-sessions': 3600_000,
    'expire-overdue-claims': sweep,
    'accept-overdue-submissions': sweep,
    // The relay is on the path of every settlement request, so it runs often.
    'relay-outbox': 1_000,
    'requeue-unfinished-settlements': sweep,
    'close-ended-challenges': sweep,
    'notice-missed-challenge-days': sweep,
    // Leases are announced an hour ahead: a sweep interval late is still in time.
    'remind-ending-leases': sweep,
    'requeue-overdue-webhook-messages': sweep,
    // Health reports add the rows not folded yet, so the interval bounds their work, not their truth.
    'fold-circle-rollups': sweep,
  };
}

/**
 * How each scheduled run is kept. One attempt: the next run is at most an interval away and does
 * the same work, so retries of runs that failed (in a database outage, say) would only pile up
 * and, once it is over, take the maintenance slots from fresh runs. Failed runs are kept by count
 * for the operator pages, not for the week other jobs' failures are.
 */
const RUN_OPTIONS = { attempts: 1, removeOnFail: { count: 1000 } };

const template = (task: MaintenanceTask) => ({ name: task, data: { task }, opts: RUN_OPTIONS });

/**
 * Repeating jobs, declared with upsertJobScheduler so every worker process can declare them at
 * start without creating duplicates (the scheduler id is the key).
 */
export async function upsertSchedules(queues: Queues, config: Config): Promise<void> {
  const maintenance = queues.get('maintenance');
  for (const [task, ms] of Object.entries(intervals(config)) as [MaintenanceTask, number][]) {
    await maintenance.upsertJobScheduler(task, { every: ms }, template(task));
  }
}

/**
 * Declares the schedulers the queue store no longer has (a Redis restarted empty, or flushed; on
 * Postgres they are rows that only go if someone deletes them); returns them.
 */
export async function restoreMissingSchedules(queues: Queues, config: Config): Promise<MaintenanceTask[]> {
  const maintenance = queues.get('maintenance');
  const restored: MaintenanceTask[] = [];
  for (const [task, ms] of Object.entries(intervals(config)) as [MaintenanceTask, number][]) {
    if (await maintenance.getJobScheduler(task)) continue;
    await maintenance.upsertJobScheduler(task, { every: ms }, template(task));
    restored.push(task);
  }
  return restored;
}

/**
 * The schedulers live in the queue store, and they are what repairs everything else the store
 * loses. So a worker checks for them whenever its connection comes back (Redis) and every sweep
 * interval, and declares again whatever is missing: a Redis restarted without persistence
 * recovers without restarting workers. On Postgres the check is one cheap read per interval.
 */
export function keepSchedules(
  queues: Queues,
  config: Config,
  log: FastifyBaseLogger,
  onReady: (listener: () => void) => void,
): () => void {
  let running = false;
  const check = async () => {
    if (running) return;
    running = true;
    try {
      const restored = await restoreMissingSchedules(queues, config);
      if (restored.length)
        log.warn({ restored }, 'job schedulers were missing from the queue store and have been declared again');
    } catch (err) {
      log.debug({ err }, 'could not check job schedulers; will retry');
    } finally {
      running = false;
    }
  };
  onReady(() => void check());
  const timer = setInterval(() => void check(), Math.min(Math.max(config.sweepIntervalSeconds, 1), 30) * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
