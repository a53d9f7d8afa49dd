import { gaugeReadAtScrape, type MetricSource } from '../metric-source.js';
import { QUEUE_NAMES, type Queues } from './queues.js';

/** The job states an operator watches: backlog (waiting, delayed), work in hand, and failures kept. */
export const WATCHED_JOB_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/**
 * Jobs per queue and state, read from the queue store at scrape time through BullMQ's API (the
 * same on Redis and on Postgres), so every API process reports the shared figures.
 */
export function queueDepthSource(queues: Queues): MetricSource {
  return gaugeReadAtScrape({
    source: 'queues',
    name: 'circle_actions_queue_jobs',
    help: 'Jobs in each queue by state (waiting, active, delayed, failed), read from the queue store',
    labelNames: ['queue', 'state'],
    read: async () => {
      const counts = await Promise.all(
        QUEUE_NAMES.map(async (queue) => ({
          queue,
          counts: await queues.get(queue).getJobCounts(...WATCHED_JOB_STATES),
        })),
      );
      return counts.flatMap(({ queue, counts }) =>
        WATCHED_JOB_STATES.map((state) => ({ labels: { queue, state }, value: counts[state] ?? 0 })),
      );
    },
  });
}
