import { UnrecoverableError } from 'bullmq';
import type { Logger } from '../context.js';
import type { Db } from '../infra/postgres.js';
import type { Queues } from '../jobs/queues.js';
import type { Processor } from '../jobs/worker-runtime.js';
import { challengeEndsAt, closeChallengeIfDue, endedChallenges } from './challenge-closing.js';
import { msUntilByDatabase, waitUntilDue } from '../jobs/due-time.js';
import { isUuid } from '../infra/uuid.js';

const SWEEP_BATCH = 200;

/**
 * The business key of a challenge's closing job. It names the end too: an edit that moves the end
 * schedules a new job, and the old one, running early, finds the challenge not yet due.
 */
export const closingJobKey = (challengeId: string, endsAt: Date) =>
  `challenge-closing:${challengeId}:${endsAt.getTime()}`;

/**
 * Schedules the closing at the end of the challenge's last day. Redis being down must not fail
 * the request that created or moved the challenge: the sweep closes it a little later instead.
 */
export async function scheduleChallengeClosing(
  queues: Queues,
  log: Logger,
  challenge: { id: string; endsAt: Date },
): Promise<void> {
  try {
    await queues.add(
      'challenge-closing',
      { challengeId: challenge.id },
      {
        jobId: closingJobKey(challenge.id, challenge.endsAt),
        delay: Math.max(0, challenge.endsAt.getTime() - Date.now()),
      },
    );
  } catch (err) {
    log.warn({ err, challengeId: challenge.id }, 'could not schedule the challenge closing; the sweep will close it');
  }
}

/** Closes the challenge if its last day is over and it is still active; a no-op otherwise. */
export const challengeClosingProcessor: Processor<'challenge-closing'> = async ({ challengeId }, ctx) => {
  if (!isUuid(challengeId)) throw new UnrecoverableError(`invalid challenge id ${JSON.stringify(challengeId)}`);
  // Run early by a worker whose clock is ahead of the database's, it waits for the last day to end.
  const endsAt = await challengeEndsAt(ctx.db, challengeId);
  if (endsAt) await waitUntilDue(await msUntilByDatabase(ctx.db, endsAt));
  return { closed: await closeChallengeIfDue(ctx.db, challengeId) };
};

/** The safety net for lost closing jobs: closes every challenge whose last day is over. */
export async function sweepEndedChallenges(ctx: { db: Db }): Promise<number> {
  let closed = 0;
  for (;;) {
    const due = await endedChallenges(ctx.db, SWEEP_BATCH);
    let progressed = 0;
    for (const id of due) if (await closeChallengeIfDue(ctx.db, id)) progressed++;
    closed += progressed;
    if (due.length < SWEEP_BATCH || progressed === 0) return closed;
  }
}
