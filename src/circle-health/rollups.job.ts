import { UnrecoverableError } from 'bullmq';
import type { Logger } from '../context.js';
import { currentSnapshot } from '../infra/snapshots.js';
import type { Db } from '../infra/db.js';
import type { Queues } from '../jobs/queues.js';
import type { Processor } from '../jobs/worker-runtime.js';
import { foldCircleRollups } from './rollup-fold.js';
import { circlesBehind } from './rollups.repository.js';
import { isUuid } from '../infra/uuid.js';

const SWEEP_BATCH = 500;

/**
 * The business key of a fold: the circle and what asked for it (an event id, or the snapshot a
 * sweep found the circle behind in). The same request enqueued twice is one job; a later one is
 * a new job, since a job still kept as completed would swallow it.
 */
export const foldJobKey = (circleId: string, cause: string) => `circle-rollups:${circleId}:${cause}`;

/** Folds the circle's new rows into its rollups (or rebuilds them); safe to run any number of times. */
export const circleRollupsProcessor: Processor<'circle-rollups'> = async ({ circleId }, ctx) => {
  if (!isUuid(circleId)) throw new UnrecoverableError(`invalid circle id ${JSON.stringify(circleId)}`);
  return foldCircleRollups(ctx.db, circleId);
};

/** Asks for a fold of the circle, e.g. after its zone changed (the rollups must be rebuilt). */
export async function enqueueFold(queues: Queues, circleId: string, cause: string): Promise<void> {
  await queues.add('circle-rollups', { circleId }, { jobId: foldJobKey(circleId, cause) });
}

/**
 * The schedule behind the rollups: every circle whose rollups are behind (rows committed since
 * its watermark, a changed zone, never folded) gets a fold job. Keyed by the snapshot's xmax, so
 * sweeps that see the same database enqueue one job per circle, and a lost job is enqueued again
 * by a later sweep. Health reports stay exact meanwhile: they add the rows not folded yet.
 */
export async function sweepRollupsBehind(ctx: { db: Db; queues: Queues; log: Logger }): Promise<number> {
  const snapshot = await currentSnapshot(ctx.db);
  const cause = snapshot.split(':')[1] as string;
  let enqueued = 0;
  let after: string | null = null;
  for (;;) {
    const circles = await circlesBehind(ctx.db, after, SWEEP_BATCH);
    for (const circleId of circles) {
      await enqueueFold(ctx.queues, circleId, `sweep-${cause}`);
      enqueued++;
    }
    if (circles.length < SWEEP_BATCH) return enqueued;
    after = circles[circles.length - 1] as string;
  }
}
