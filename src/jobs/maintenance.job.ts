import { UnrecoverableError } from 'bullmq';
import type { MaintenanceTask } from './queues.js';
import type { JobContext, Processor } from './worker-runtime.js';

/** One housekeeping task: does its work and says what it did (the job's return value). */
export type MaintenanceWork = (ctx: JobContext) => Promise<Record<string, number>>;

/** The work behind every maintenance task; the worker composes it from the domains'. */
export type MaintenanceTasks = Record<MaintenanceTask, MaintenanceWork>;

/**
 * Periodic housekeeping and repair. The sweeps re-do what a lost delayed job would have done
 * (Redis flushed or restarted without persistence). Every task is idempotent, so overlapping runs
 * on several workers are harmless.
 */
export function maintenanceProcessor(tasks: MaintenanceTasks): Processor<'maintenance'> {
  return async ({ task }, ctx) => {
    const work = Object.hasOwn(tasks, task) ? tasks[task] : undefined;
    // A payload this version does not know (a newer producer, a typo): retrying cannot help.
    if (!work) throw new UnrecoverableError(`unknown maintenance task ${JSON.stringify(task)}`);
    return work(ctx);
  };
}
