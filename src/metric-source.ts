import { Gauge, type Registry } from 'prom-client';

/**
 * A source of Prometheus figures the /metrics route serves (src/http/metrics.ts) without knowing
 * what they are about: app.ts gives the plugin the business areas' sources, a worker process its
 * job figures, and a new area (webhook deliveries by outcome, say) plugs in the same way.
 *
 * A source adds its metrics to the registry of the app serving them. Figures about shared state
 * (queue depths, settlements, overdue leases) are read in `refresh`, which every scrape awaits,
 * so every API process reports the same numbers; per-process figures (job durations) are counted
 * where the work runs and need no refresh. A refresh that fails or takes over 2 s does not fail
 * the scrape: the source's figures are left out and `circle_actions_metric_source_up` says so.
 */
export interface MetricSource {
  /** A short name, the `source` label of `circle_actions_metric_source_up`. */
  readonly name: string;
  register(registry: Registry): void;
  /** Reads the figures of shared state; throws when the store cannot be read. */
  refresh?(): Promise<void>;
}

/**
 * A source of one gauge of shared state: `read` answers the current figures, one per label set.
 * A failed read leaves the gauge empty rather than showing stale figures.
 */
export function gaugeReadAtScrape<L extends string>(spec: {
  source: string;
  name: string;
  help: string;
  labelNames: readonly L[];
  read: () => Promise<{ labels: Record<L, string>; value: number }[]>;
}): MetricSource {
  const gauge = new Gauge({ name: spec.name, help: spec.help, labelNames: spec.labelNames, registers: [] });
  return {
    name: spec.source,
    register(registry) {
      registry.registerMetric(gauge);
    },
    async refresh() {
      gauge.reset();
      const rows = await spec.read();
      for (const row of rows) gauge.set(row.labels as Partial<Record<L, string>>, row.value);
    },
  };
}
