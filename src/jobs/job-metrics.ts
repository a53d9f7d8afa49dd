import { Counter, Histogram, type Registry } from 'prom-client';
import type { MetricSource } from '../metric-source.js';
import type { JobObserver } from './worker-runtime.js';

/**
 * Job durations and failures per queue, counted in the process that runs the jobs (the worker
 * runtime reports each run here). Per process by nature: Prometheus sums the worker processes.
 */
export class JobMetrics implements JobObserver, MetricSource {
  readonly name = 'jobs';
  private readonly durations = new Histogram({
    name: 'circle_actions_job_duration_seconds',
    help: 'Time a job took in this process, by queue and outcome (completed or failed)',
    labelNames: ['queue', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [],
  });
  private readonly failures = new Counter({
    name: 'circle_actions_job_failures_total',
    help: 'Job runs that threw in this process, by queue (each is retried until its attempts run out)',
    labelNames: ['queue'] as const,
    registers: [],
  });

  register(registry: Registry): void {
    registry.registerMetric(this.durations);
    registry.registerMetric(this.failures);
  }

  completed(queue: string, _payload: unknown, _result: unknown, seconds: number): void {
    this.durations.observe({ queue, outcome: 'completed' }, seconds);
  }

  failed(queue: string, seconds: number): void {
    this.durations.observe({ queue, outcome: 'failed' }, seconds);
    this.failures.inc({ queue });
  }
}
