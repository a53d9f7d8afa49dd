import { recordEvents } from '../events/events.repository.js';
import type { OutboxSubscriber } from '../events/outbox-relay.js';
import { revokeClaimsOfDepartedMember } from './claims.repository.js';
import { claimRevokedEvents } from './claims.service.js';

/** Shown to the member and in the feed; the same whether they left or were removed. */
export const DEPARTED_REASON = 'No longer a member of the circle';

/**
 * A member who leaves a circle (or is removed from it) can no longer act on its claims, not even
 * release them, yet their active claims would hold task slots and count toward their cap until
 * the leases ran out. For each `member.left` event this revokes the member's active claims in that
 * circle made before the departure (claims made after a rejoin are kept), each with its
 * `claim.revoked` event, in the member's inbox. Submitted work stays for review.
 *
 * An outbox subscriber, so circles need not know claims: it runs in the relay's transaction, so
 * the revocations commit with the event marked relayed. An event relayed again finds those claims
 * no longer active and revokes nothing more.
 */
export const revokeClaimsOfDepartedMembers: OutboxSubscriber = async (trx, events) => {
  for (const event of events) {
    if (event.type !== 'member.left' || !event.circle_id || !event.subject_id) continue;
    const revoked = await revokeClaimsOfDepartedMember(trx, event.circle_id, event.subject_id, DEPARTED_REASON);
    // The service revoked them, not a person: no actor (like expiry).
    await recordEvents(trx, claimRevokedEvents(revoked, { actorId: null, reason: DEPARTED_REASON }));
  }
  return undefined;
};
