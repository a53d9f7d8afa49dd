import { sql } from 'kysely';
import type { Db } from '../infra/postgres.js';
import { gaugeReadAtScrape, type MetricSource } from '../metric-source.js';

const STATUSES = ['pending', 'running', 'completed', 'failed'] as const;

/**
 * Settlements by status, read from Postgres at scrape time: completed and failed ones as they
 * stand, pending and running ones as the work in hand (one row per project at most, so the count
 * is small).
 */
export function settlementSource(db: Db): MetricSource {
  return gaugeReadAtScrape({
    source: 'settlements',
    name: 'circle_actions_settlements',
    help: 'Settlements by status (pending, running, completed, failed)',
    labelNames: ['status'],
    read: async () => {
      const { rows } = await sql<{ status: string; n: number }>`
        SELECT status, count(*)::int AS n FROM settlements GROUP BY status`.execute(db);
      const counts = new Map(rows.map((row) => [row.status, row.n]));
      return STATUSES.map((status) => ({ labels: { status }, value: counts.get(status) ?? 0 }));
    },
  });
}
