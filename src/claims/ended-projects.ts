import { recordEvents } from '../events/events.repository.js';
import type { OutboxSubscriber } from '../events/outbox-relay.js';
import { revokeLiveClaimsOfProject } from './claims.repository.js';
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
    const revoked = await revokeLiveClaimsOfProject(trx, event.subject_id, reason);
    await recordEvents(trx, claimRevokedEvents(revoked, { actorId: null, reason }));
  }
  return undefined;
};
