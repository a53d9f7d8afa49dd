import type { Db } from '../infra/postgres.js';
import { recordEvent } from '../events/events.repository.js';
import { bookSettlement } from '../ledger/ledger.repository.js';
import { splitPool, splitResultHash } from './split.js';
import * as repo from './settlements.repository.js';

export type SettleOutcome = 'completed' | 'already_done';

/**
 * Settles one requested settlement, all or nothing, in a single database transaction: lock the
 * settlement row first (a duplicate delivery waits here, then finds it done), aggregate the
 * contributions up to the frozen cutoff, split the pool, write payouts and ledger entries, store
 * the result hash and mark it completed. A worker killed at any instant leaves either nothing
 * (the retry starts over) or everything (the retry is a no-op).
 */
export async function settleProject(db: Db, settlementId: string): Promise<SettleOutcome> {
  return db.transaction().execute(async (trx) => {
    const s = await repo.lockSettlement(trx, settlementId);
    if (!s || s.status === 'completed' || s.status === 'failed') return 'already_done';

    const contributors = await repo.contributorTotals(trx, s.project_id, s.cutoff_id);
    const result = splitPool({
      pool: BigInt(s.pool_amount),
      contributors,
      policy: {
        ...(s.min_points !== null && { minPoints: BigInt(s.min_points) }),
        ...(s.cap_basis_points !== null && { capBasisPoints: s.cap_basis_points }),
      },
    });
    const distributed = BigInt(s.pool_amount) - result.undistributed;

    await repo.insertPayouts(trx, s, result.payouts);
    await repo.insertPayoutNotices(trx, s);
    await bookSettlement(trx, {
      id: s.id,
      circleId: s.circle_id,
      projectId: s.project_id,
      unit: s.unit,
      pool: BigInt(s.pool_amount),
      distributed,
    });
    const resultHash = splitResultHash(result);
    await repo.completeSettlement(trx, s.id, {
      totalPoints: result.totalPoints,
      distributed,
      undistributed: result.undistributed,
      payeeCount: result.payouts.length,
      resultHash,
    });
    await recordEvent(trx, {
      circleId: s.circle_id,
      type: 'settlement.completed',
      subjectId: s.id,
      payload: {
        projectId: s.project_id,
        distributed: distributed.toString(),
        payees: result.payouts.length,
        resultHash,
      },
    });
    return 'completed';
  });
}
