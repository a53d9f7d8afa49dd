// The event types a webhook may subscribe to: every outbox event a circle's feed shows (the
// notices meant for one member alone, such as payouts, lease reminders and missed days, are never
// delivered and so not offered), plus the webhooks' own. `*` means all of them, including types
// added later.

export const WEBHOOK_EVENT_TYPES = [
  'challenge.cancelled',
  'challenge.closed',
  'challenge.created',
  'challenge.updated',
  'checkin.recorded',
  'circle.created',
  'circle.updated',
  'claim.created',
  'claim.expired',
  'claim.extended',
  'claim.released',
  'claim.revoked',
  'contribution.recorded',
  'invite.created',
  'invite.revoked',
  'member.joined',
  'member.left',
  'member.role_changed',
  'project.cancelled',
  'project.closed',
  'project.created',
  'project.draft',
  'project.opened',
  'project.settled',
  'project.updated',
  'review.created',
  'settlement.completed',
  'settlement.failed',
  'settlement.requested',
  'submission.created',
  'task.cancelled',
  'task.completed',
  'task.created',
  'task.updated',
  'webhook.created',
  'webhook.deleted',
  'webhook.disabled',
  'webhook.enabled',
  'webhook.redelivery_requested',
  'webhook.secret_rotated',
  'webhook.updated',
] as const;

export const ALL_EVENTS = '*';

const KNOWN = new Set<string>([ALL_EVENTS, ...WEBHOOK_EVENT_TYPES]);

/** The positions of the types in `events` that are not offered (for the 400's field errors). */
export function unknownEventTypes(events: readonly string[]): number[] {
  return events.flatMap((type, i) => (KNOWN.has(type) ? [] : [i]));
}

/** The subscription as stored: each type once, `*` alone when present. */
export function normalizeEventTypes(events: readonly string[]): string[] {
  return events.includes(ALL_EVENTS) ? [ALL_EVENTS] : [...new Set(events)].sort();
}
