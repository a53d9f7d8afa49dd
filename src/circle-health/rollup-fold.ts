import type { Db } from '../infra/db.js';
import { foldKind } from './rollups.js';
import * as repo from './rollups.repository.js';

export interface FoldResult {
  /** False when the circle does not exist. */
  folded: boolean;
  /** The rollups were dropped and built again (first fold, or the circle's zone changed). */
  rebuilt: boolean;
  /** Source rows added. */
  rows: number;
}

/**
 * Brings a circle's rollups up to now, in one transaction: lock the watermark, take a snapshot,
 * add the rows visible in it that the watermark does not cover (all rows when rebuilding), store
 * the snapshot as the new watermark. The rows and the watermark commit together, so a fold that
 * fails or is delivered twice adds nothing twice: the next one starts from what was committed.
 */
export async function foldCircleRollups(db: Db, circleId: string): Promise<FoldResult> {
  return db
    .transaction()
    .setIsolationLevel('read committed')
    .execute(async (trx) => {
      // Read committed on purpose: the snapshot below is taken after the lock is granted, so it
      // sees the watermark a fold that held the lock just committed.
      const state = await repo.lockWatermark(trx, circleId);
      if (!state) return { folded: false, rebuilt: false, rows: 0 };
      const timezone = (await repo.circleTimezone(trx, circleId)) as string;
      const kind = foldKind(state, timezone);
      const snapshot = await repo.takeSnapshot(trx);
      if (kind === 'rebuild') await repo.dropRollups(trx, circleId);
      const rows = await repo.foldRows(
        trx,
        circleId,
        timezone,
        snapshot,
        kind === 'rebuild' ? null : (state.foldedThrough as string),
      );
      await repo.advanceWatermark(trx, circleId, snapshot, timezone);
      return { folded: true, rebuilt: kind === 'rebuild', rows };
    });
}
