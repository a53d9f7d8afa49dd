import { sql } from 'kysely';
import { Counter, type Registry } from 'prom-client';
import type { Db } from '../infra/postgres.js';
import type { JobObserver } from '../jobs/worker-runtime.js';
import type { QueueName } from '../jobs/queues.js';
import { gaugeReadAtScrape, type MetricSource } from '../metric-source.js';

/**
 * Leases past their deadline and still active, read from Postgres at scrape time (the partial
 * index of active claims by deadline makes it an index range scan). Above zero for more than a
 * second or two, expiry is falling behind: the per-second jobs are not running.
 */
export function overdueLeasesSource(db: Db): MetricSource {
  return gaugeReadAtScrape({
    source: 'leases',
    name: 'circle_actions_leases_overdue',
    help: 'Active leases past their deadline, not expired yet',
    labelNames: [],
    read: async () => {
      const { rows } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM claims WHERE status = 'active' AND expires_at <= now()`.execute(db);
      return [{ labels: {}, value: rows[0]?.n ?? 0 }];
    },
  });
}

/**
 * Leases expired by the per-second expiry jobs versus by the safety-net sweep, counted from the
 * runs' results in the process that ran them. Expiries by the sweep mean expiry jobs were lost
 * or late (the queue store lost them, or it was unreachable when the lease was taken).
 */
export class LeaseExpiryMetrics implements JobObserver, MetricSource {
  readonly name = 'lease-expiries';
  private readonly expired = new Counter({
    name: 'circle_actions_leases_expired_total',
    help: 'Leases expired in this process, by what expired them: job (the expiry job of their second) or sweep',
    labelNames: ['by'] as const,
    registers: [],
  });

  constructor() {
    // Both series exist from the start, so a rate over them is defined before the first expiry.
    this.expired.inc({ by: 'job' }, 0);
    this.expired.inc({ by: 'sweep' }, 0);
  }

  register(registry: Registry): void {
    registry.registerMetric(this.expired);
  }

  completed(queue: QueueName, payload: unknown, result: unknown): void {
    const expired = (result as { expired?: unknown } | null)?.expired;
    if (typeof expired !== 'number' || expired <= 0) return;
    if (queue === 'claim-expiry') this.expired.inc({ by: 'job' }, expired);
    else if (queue === 'maintenance' && (payload as { task?: string })?.task === 'expire-overdue-claims')
      this.expired.inc({ by: 'sweep' }, expired);
  }
}
