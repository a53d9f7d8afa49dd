// One line of plain English per event, for the activity feed and the inbox. A pure function of the
// event and the names read with it, so the wording is tested without a database. Names that are
// gone (a deleted task, an unknown actor) fall back to neutral words rather than failing.

/** An event with the names the feed reads beside it. */
export interface EventFacts {
  type: string;
  actorHandle: string | null;
  /** The member the event concerns (its recipient), or the member it is about (member.*). */
  memberHandle: string | null;
  taskTitle: string | null;
  projectTitle: string | null;
  payload: Record<string, unknown>;
}

const quoted = (title: string | null, fallback: string) => (title ? `“${title}”` : fallback);
const text = (value: unknown): string | null => (typeof value === 'string' && value ? value : null);
const num = (value: unknown): number | null =>
  typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : null;
const possessive = (handle: string) => `${handle}’s`;

export function summarize(e: EventFacts): string {
  const actor = e.actorHandle ?? 'Someone';
  const member = e.memberHandle ?? 'a member';
  const task = quoted(e.taskTitle, 'a task');
  const project = quoted(e.projectTitle, 'a project');
  const reason = text(e.payload.reason);
  const because = reason ? `: ${reason}` : '';
  switch (e.type) {
    case 'circle.created':
      return `${actor} created the circle`;
    case 'circle.updated': {
      const fields = Object.keys((e.payload.changes as Record<string, unknown> | undefined) ?? {});
      return `${actor} changed the circle’s ${fields.length ? fields.join(', ') : 'settings'}`;
    }
    case 'member.joined':
      return `${member} joined the circle`;
    case 'member.left':
      return e.payload.removed ? `${actor} removed ${member} from the circle` : `${member} left the circle`;
    case 'member.role_changed':
      // The previous owner's side of a transfer: their own act, not a role someone gave them.
      if (e.payload.from === 'owner' && text(e.payload.newOwnerId))
        return `${member} handed over ownership and is now ${text(e.payload.to) ?? 'a member'}`;
      return `${actor} made ${member} ${text(e.payload.to) ?? 'a member'}`;
    case 'invite.created':
      return `${actor} created an invite`;
    case 'invite.revoked':
      return `${actor} revoked an invite`;
    case 'project.created':
      return `${actor} created the project ${project}`;
    case 'project.updated':
      return `${actor} updated the project ${project}`;
    case 'project.opened':
    case 'project.closed':
    case 'project.cancelled':
    case 'project.settled':
    case 'project.draft':
      return `${actor} ${e.type === 'project.draft' ? 'moved back to draft' : e.type.slice('project.'.length)} the project ${project}`;
    case 'task.created':
      return `${actor} added the task ${task}`;
    case 'task.updated':
      return `${actor} changed the task ${task}`;
    case 'task.completed':
      return `The task ${task} is done`;
    case 'task.cancelled':
      return `${actor} cancelled the task ${task}${because}`;
    case 'claim.created':
      return `${actor} claimed ${task}`;
    case 'claim.extended':
      return `${actor} extended their lease on ${task}`;
    case 'claim.released':
      return `${actor} released ${task}`;
    case 'claim.revoked':
      // No actor: the service revoked it (the member left the circle).
      return e.actorHandle
        ? `${actor} revoked ${possessive(member)} claim on ${task}${because}`
        : `${possessive(member)} claim on ${task} was revoked${because}`;
    case 'claim.expired':
      return `${possessive(member)} lease on ${task} expired`;
    case 'claim.lease_ending':
      return `${possessive(member)} lease on ${task} ends within the hour`;
    case 'submission.created': {
      const revision = num(e.payload.revision);
      return `${actor} submitted work on ${task}${revision && revision > 1 ? ` (revision ${revision})` : ''}`;
    }
    case 'review.created': {
      const work = `${possessive(member)} work on ${task}`;
      if (e.payload.decision === 'accept') {
        const score = num(e.payload.score);
        const scored = score === null ? '' : ` (score ${score})`;
        return e.payload.automatic
          ? `${work} was accepted automatically${scored}`
          : `${actor} accepted ${work}${scored}`;
      }
      if (e.payload.decision === 'reject') return `${actor} rejected ${work}`;
      return `${actor} sent ${work} back for revision`;
    }
    case 'contribution.recorded': {
      const points = num(e.payload.points) ?? 0;
      if (e.payload.source === 'adjustment')
        return `${actor} adjusted ${possessive(member)} points by ${points > 0 ? '+' : ''}${points}${because}`;
      return `${member} earned ${points} points`;
    }
    case 'settlement.requested':
      return `${actor} asked to settle ${project}`;
    case 'settlement.completed':
      return `${project} was settled: ${text(e.payload.distributed) ?? '0'} paid to ${num(e.payload.payees) ?? 0} members`;
    case 'settlement.failed':
      return `Settling ${project} failed`;
    case 'challenge.created':
      return `${actor} started the challenge ${quoted(text(e.payload.title), 'a challenge')}`;
    case 'challenge.updated':
      return `${actor} changed a challenge`;
    case 'challenge.cancelled':
      return `${actor} cancelled a challenge${because}`;
    case 'challenge.closed':
      return `The challenge ${quoted(text(e.payload.title), 'a challenge')} ended: ${num(e.payload.checkins) ?? 0} check-ins by ${num(e.payload.participants) ?? 0} members`;
    case 'checkin.recorded':
      return `${actor} checked in${e.payload.makeUp ? ' for a missed day' : ''}`;
    case 'challenge.day_missed': {
      const day = text(e.payload.localDate) ?? 'a day';
      return e.payload.streakKept
        ? `${member} missed ${day} of a challenge; a freeze kept the streak alive`
        : `${member} missed ${day} of a challenge while on a streak of ${num(e.payload.streak) ?? 0}`;
    }
    case 'payout.credited':
      return `${member} was paid ${num(e.payload.amount) ?? 0} ${text(e.payload.unit) ?? ''} for ${project}`.trimEnd();
    case 'webhook.created':
      return `${actor} added a webhook`;
    case 'webhook.updated':
      return `${actor} changed a webhook`;
    case 'webhook.deleted':
      return `${actor} deleted a webhook`;
    case 'webhook.enabled':
      return `${actor} enabled a webhook`;
    case 'webhook.disabled':
      return e.payload.reason === 'failing'
        ? `A webhook was disabled after ${num(e.payload.failedMessages) ?? 0} failed deliveries in a row`
        : `${actor} disabled a webhook`;
    case 'webhook.secret_rotated':
      return `${actor} rotated a webhook’s signing secret`;
    case 'webhook.redelivery_requested':
      return `${actor} asked for a webhook delivery to be sent again`;
    default:
      return `${e.actorHandle ? `${actor}: ` : ''}${e.type}`;
  }
}
