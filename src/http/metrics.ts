import { timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { unauthorized } from '../errors.js';
import { withDeadline } from '../infra/deadline.js';
import type { MetricSource } from '../metric-source.js';
import { sharedRun } from '../infra/shared-run.js';

/** How long a scrape waits for one source's figures. */
const SOURCE_TIMEOUT_MS = 2_000;

export interface MetricsOptions {
  /** Figures beyond HTTP and the process: queue depths, settlements, jobs... (src/metric-source.ts). */
  sources?: MetricSource[];
}

/**
 * Prometheus metrics at /metrics: process metrics plus request counts and latencies labelled by
 * route pattern (never the raw URL, so ids don't explode the label space), and whatever the
 * injected sources add. With METRICS_TOKEN set, scrapers must send it as a bearer token. Each app
 * has its own registry, so several apps in one process (tests) don't collide.
 */
export const metricsPlugin = fp<MetricsOptions>(
  async (app, options) => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const requests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    });
    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    const sourceUp = new Gauge({
      name: 'circle_actions_metric_source_up',
      help: '1 when a metric source could read its figures at the last scrape, 0 when it could not',
      labelNames: ['source'] as const,
      registers: [registry],
    });
    const sources = options.sources ?? [];
    for (const source of sources) source.register(registry);
    // Each scrape reads the shared figures afresh (scrapes arriving together share one read); one
    // unreadable store costs its own figures only.
    const refresh = sharedRun(() =>
      Promise.all(
        sources.map(async (source) => {
          if (!source.refresh) return;
          const ok = await withDeadline(source.refresh(), SOURCE_TIMEOUT_MS, `metric source ${source.name}`).then(
            () => true,
            () => false,
          );
          sourceUp.set({ source: source.name }, ok ? 1 : 0);
        }),
      ),
    );

    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      requests.inc({ method: request.method, route, status: String(reply.statusCode) });
      duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    });

    const token = app.config.metricsToken;
    app.get('/metrics', { config: { rateLimit: false }, schema: { hide: true } }, async (request, reply) => {
      if (token) {
        const given = Buffer.from(request.headers.authorization ?? '');
        const wanted = Buffer.from(`Bearer ${token}`);
        if (given.length !== wanted.length || !timingSafeEqual(given, wanted))
          throw unauthorized('invalid_token', 'Metrics need the METRICS_TOKEN bearer token.');
      }
      await refresh();
      return reply.type(registry.contentType).send(await registry.metrics());
    });
  },
  { name: 'metrics', dependencies: ['config'] },
);
