import type { Config } from '../config.js';
import type { MaintenanceTask, Queues } from './queues.js';

/**
 * Repeating jobs, declared with upsertJobScheduler so every worker process can declare them at
 * start without creating duplicates (the scheduler id is the key).
 */
export async function upsertSchedules(queues: Queues, config: Config): Promise<void> {
  const sweep = config.sweepIntervalSeconds * 1000;
  const every: Record<MaintenanceTask, number> = {
    'purge-idempotency-keys': 3600_000,
    'expire-overdue-claims': sweep,
    'accept-overdue-submissions': sweep,
    // The relay is on the path of every settlement request, so it runs often.
    'relay-outbox': 1_000,
    'requeue-unfinished-settlements': sweep,
  };
  const maintenance = queues.get('maintenance');
  for (const [task, ms] of Object.entries(every) as [MaintenanceTask, number][]) {
    await maintenance.upsertJobScheduler(task, { every: ms }, { name: task, data: { task } });
  }
}
