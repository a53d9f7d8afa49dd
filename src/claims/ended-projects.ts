import type { Transaction } from 'kysely';
import { recordEvents } from '../events/events.repository.js';
import type { OutboxSubscriber } from '../events/outbox-relay.js';
import type { Database } from '../infra/database-schema.js';
import type { Db } from '../infra/postgres.js';
import { SWEEP_BATCH } from './claim-expiry.job.js';
import {
  type ClaimRow,
  lockLiveClaimsOfEndedProjects,
  revokeLiveClaims,
  revokeLiveClaimsOfProject,
} from './claims.repository.js';
import { claimRevokedEvents } from './claims.service.js';

/** Shown to the members whose claims a project's end revoked, by how it ended. */
export const PROJECT_ENDED_REASON = {
  'project.cancelled': 'The project was cancelled',
  'project.settled': 'The project was settled',
} as const;

/**
 * A project cancelled, or frozen for settlement, takes no more work: its claims can be neither
 * submitted nor reviewed, yet each would hold its task slot and count toward its member's cap
 * for good. For each `project.cancelled` or `project.settled` event this revokes the project's
 * active and submitted claims, each with its `claim.revoked` event in the member's inbox. An
 * outbox subscriber, so projects need not know claims (it runs in the relay's transaction, so the
 * revocations commit with the event marked relayed); relayed again, it finds nothing.
 */
export const revokeClaimsOfEndedProjects: OutboxSubscriber = async (trx, events) => {
  for (const event of events) {
    if (!Object.hasOwn(PROJECT_ENDED_REASON, event.type) || !event.subject_id) continue;
    const reason = PROJECT_ENDED_REASON[event.type as keyof typeof PROJECT_ENDED_REASON];
    await revokedWithEvents(trx, await revokeLiveClaimsOfProject(trx, event.subject_id, reason), reason);
  }
  return undefined;
};

/** Records each revoked claim's `claim.revoked` event; returns how many there were. */
async function revokedWithEvents(trx: Transaction<Database>, revoked: ClaimRow[], reason: string): Promise<number> {
  await recordEvents(trx, claimRevokedEvents(revoked, { actorId: null, reason }));
  return revoked.length;
}

/**
 * The safety net behind the subscriber, run with the lease sweep: revokes live claims that
 * committed in a project after its end was relayed (lockLiveClaimsOfEndedProjects says how), so
 * none holds its slot and its member's cap until its lease runs out. Returns how many it revoked.
 */
export async function revokeStrandedClaims(db: Db): Promise<number> {
  let total = 0;
  for (;;) {
    const { found, revoked } = await db.transaction().execute(async (trx) => {
      const stranded = await lockLiveClaimsOfEndedProjects(trx, SWEEP_BATCH);
      let n = 0;
      for (const status of ['cancelled', 'settled'] as const) {
        const ids = stranded.filter((claim) => claim.project_status === status).map((claim) => claim.id);
        const reason = PROJECT_ENDED_REASON[`project.${status}`];
        n += await revokedWithEvents(trx, await revokeLiveClaims(trx, ids, reason), reason);
      }
      return { found: stranded.length, revoked: n };
    });
    total += revoked;
    if (found < SWEEP_BATCH) return total;
  }
}
