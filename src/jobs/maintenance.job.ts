import type { Processor } from './worker-runtime.js';
import { purgeExpiredKeys } from '../idempotency/idempotency.repository.js';

/** Periodic housekeeping and repair; each task is idempotent, so overlapping runs are harmless. */
export const maintenanceProcessor: Processor<'maintenance'> = async ({ task }, ctx) => {
  switch (task) {
    case 'purge-idempotency-keys': {
      const purged = await purgeExpiredKeys(ctx.db);
      return { purged };
    }
  }
};
