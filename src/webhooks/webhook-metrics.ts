import { sql } from 'kysely';
import { Counter, type Registry } from 'prom-client';
import type { Db } from '../infra/postgres.js';
import type { QueueName } from '../jobs/queues.js';
import type { JobObserver } from '../jobs/worker-runtime.js';
import { gaugeReadAtScrape, type MetricSource } from '../metric-source.js';

/** What a delivery attempt's job answers (src/webhooks/webhook-delivery.job.ts). */
const OUTCOMES = ['succeeded', 'failed', 'retrying', 'skipped', 'stale'] as const;

/**
 * Webhook delivery attempts by outcome, counted from the delivery jobs' results in the process
 * that ran them: `succeeded`, `failed` (the message gave up, or was ended unsent because its
 * endpoint is disabled), `retrying` (an attempt failed and another is scheduled), `skipped` and
 * `stale` (nothing to do: a message already ended, a repeat).
 */
export class WebhookDeliveryMetrics implements JobObserver, MetricSource {
  readonly name = 'webhook-deliveries';
  private readonly attempts = new Counter({
    name: 'circle_actions_webhook_deliveries_total',
    help: 'Webhook delivery jobs run in this process, by outcome',
    labelNames: ['outcome'] as const,
    registers: [],
  });

  constructor() {
    for (const outcome of OUTCOMES) this.attempts.inc({ outcome }, 0);
  }

  register(registry: Registry): void {
    registry.registerMetric(this.attempts);
  }

  completed(queue: QueueName, _payload: unknown, result: unknown): void {
    if (queue !== 'webhook-delivery') return;
    const outcome = (result as { result?: unknown } | null)?.result;
    if (typeof outcome === 'string' && (OUTCOMES as readonly string[]).includes(outcome))
      this.attempts.inc({ outcome });
  }
}

/** Webhook messages still to deliver, from Postgres at scrape time (a partial index walk). */
export function pendingWebhooksSource(db: Db): MetricSource {
  return gaugeReadAtScrape({
    source: 'webhooks',
    name: 'circle_actions_webhook_messages_pending',
    help: 'Webhook messages not delivered yet (waiting for an attempt or a retry)',
    labelNames: [],
    read: async () => {
      const { rows } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM webhook_messages WHERE status = 'pending'`.execute(db);
      return [{ labels: {}, value: rows[0]?.n ?? 0 }];
    },
  });
}
