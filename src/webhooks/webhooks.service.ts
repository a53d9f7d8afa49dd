import type { AppContext } from '../context.js';
import { conflict, invalid, notFound } from '../errors.js';
import { decodeCursor, pageOf } from '../infra/cursors.js';
import { recordEvent } from '../events/events.repository.js';
import { MANAGERS, requireMember, requireRole } from '../circles/access.js';
import { checkWebhookUrl } from './address-policy.js';
import { normalizeEventTypes, unknownEventTypes } from './event-types.js';
import { SECRET_GRACE_MS, generateSecret, liveRetiredSecrets } from './signing.js';
import { disableEndpoint, enqueueDelivery } from './webhook-delivery.job.js';
import * as repo from './webhooks.repository.js';

// A circle's webhook endpoints, managed by its owner and admins: creating (the secret is shown
// then and at rotation only), listing, changing, deleting, the delivery log and redelivery.
// Every change records its event in the same transaction; no event carries a secret or the
// endpoint's full URL (a URL's path or query can itself be a credential), only its origin.

/** Until when secrets retired by rotation keep signing beside the current one; null if none does. */
function retiredSecretsSignUntil(retired: repo.EndpointRow['retired_secrets']): Date | null {
  const newest = liveRetiredSecrets(retired, Date.now())[0];
  return newest ? new Date(newest.expiresAt) : null;
}

export const toWebhookView = (w: repo.EndpointRow) => ({
  id: w.id,
  circleId: w.circle_id,
  url: w.url,
  events: w.events,
  description: w.description,
  enabled: w.enabled,
  disabledAt: w.disabled_at,
  disabledReason: w.disabled_reason,
  failureStreak: w.failure_streak,
  previousSecretExpiresAt: retiredSecretsSignUntil(w.retired_secrets),
  createdBy: w.created_by,
  createdAt: w.created_at,
  updatedAt: w.updated_at,
});

const originOf = (url: string) => new URL(url).origin;

function checkUrl(ctx: AppContext, url: string) {
  const problem = checkWebhookUrl(url, ctx.config.webhooks.allowPrivate);
  if (problem) throw invalid(problem.code, problem.detail, [{ path: 'body/url', message: problem.detail }]);
}

function checkEvents(events: readonly string[]): string[] {
  const unknown = unknownEventTypes(events);
  if (unknown.length)
    throw invalid(
      'unknown_event_type',
      `Unknown event type${unknown.length > 1 ? 's' : ''}: ${unknown.map((i) => events[i]).join(', ')}.`,
      unknown.map((i) => ({ path: `body/events/${i}`, message: 'is not an event type webhooks can receive' })),
    );
  return normalizeEventTypes(events);
}

export interface NewWebhook {
  url: string;
  events: string[];
  description?: string;
}

export async function createWebhook(ctx: AppContext, userId: string, circleId: string, input: NewWebhook) {
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  checkUrl(ctx, input.url);
  const events = checkEvents(input.events);
  const secret = generateSecret();
  const endpoint = await ctx.db.transaction().execute(async (trx) => {
    await requireRole(trx, circleId, userId, MANAGERS);
    const endpoint = await repo.insertEndpoint(trx, {
      circle_id: circleId,
      url: input.url,
      events,
      description: input.description ?? '',
      secret,
      created_by: userId,
    });
    await recordEvent(trx, {
      circleId,
      type: 'webhook.created',
      subjectId: endpoint.id,
      actorId: userId,
      payload: { origin: originOf(endpoint.url), events },
    });
    return endpoint;
  });
  return { ...toWebhookView(endpoint), secret };
}

export async function listWebhooks(ctx: AppContext, userId: string, circleId: string, limit: number, cursor?: string) {
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  const after = decodeCursor(cursor, ['number', 'uuid']) as [number, string] | null;
  const rows = await repo.listEndpoints(ctx.db, circleId, limit, after);
  const page = pageOf(rows, limit, (r) => [r.cursor_ts, r.id]);
  return { items: page.items.map(toWebhookView), nextCursor: page.nextCursor };
}

export async function getWebhook(ctx: AppContext, userId: string, circleId: string, webhookId: string) {
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  const endpoint = await repo.findEndpoint(ctx.db, circleId, webhookId);
  if (!endpoint) throw notFound('webhook');
  return toWebhookView(endpoint);
}

export interface WebhookChanges {
  url?: string;
  events?: string[];
  description?: string;
  enabled?: boolean;
}

export async function updateWebhook(
  ctx: AppContext,
  userId: string,
  circleId: string,
  webhookId: string,
  input: WebhookChanges,
) {
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  if (input.url !== undefined) checkUrl(ctx, input.url);
  const events = input.events === undefined ? undefined : checkEvents(input.events);
  const updated = await ctx.db.transaction().execute(async (trx) => {
    await requireRole(trx, circleId, userId, MANAGERS);
    let endpoint = await repo.lockEndpoint(trx, circleId, webhookId, input.enabled === false ? 'end' : 'edit');
    if (!endpoint) throw notFound('webhook');
    const changes: Parameters<typeof repo.updateEndpoint>[3] = {};
    const changed: string[] = [];
    if (input.url !== undefined && input.url !== endpoint.url) {
      changes.url = input.url;
      changed.push('url');
    }
    if (events && events.join(' ') !== endpoint.events.join(' ')) {
      changes.events = events;
      changed.push('events');
    }
    if (input.description !== undefined && input.description !== endpoint.description) {
      changes.description = input.description;
      changed.push('description');
    }
    if (changed.length) {
      endpoint = await repo.updateEndpoint(trx, circleId, webhookId, changes);
      await recordEvent(trx, {
        circleId,
        type: 'webhook.updated',
        subjectId: webhookId,
        actorId: userId,
        payload: { changed, origin: originOf(endpoint.url), events: endpoint.events },
      });
    }
    if (input.enabled === false && endpoint.enabled) endpoint = await disableEndpoint(trx, endpoint, 'manual', userId);
    if (input.enabled === true && !endpoint.enabled) {
      // Re-enabled by hand: the failing streak starts over.
      endpoint = await repo.updateEndpoint(trx, circleId, webhookId, {
        enabled: true,
        disabled_at: null,
        disabled_reason: null,
        failure_streak: 0,
      });
      await recordEvent(trx, { circleId, type: 'webhook.enabled', subjectId: webhookId, actorId: userId });
    }
    return endpoint;
  });
  return toWebhookView(updated);
}

export async function deleteWebhook(ctx: AppContext, userId: string, circleId: string, webhookId: string) {
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  await ctx.db.transaction().execute(async (trx) => {
    await requireRole(trx, circleId, userId, MANAGERS);
    const endpoint = await repo.lockEndpoint(trx, circleId, webhookId, 'end');
    if (!endpoint) throw notFound('webhook');
    await repo.deleteEndpoint(trx, circleId, webhookId);
    await recordEvent(trx, {
      circleId,
      type: 'webhook.deleted',
      subjectId: webhookId,
      actorId: userId,
      payload: { origin: originOf(endpoint.url) },
    });
  });
}

export async function rotateSecret(ctx: AppContext, userId: string, circleId: string, webhookId: string) {
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  const secret = generateSecret();
  const endpoint = await ctx.db.transaction().execute(async (trx) => {
    await requireRole(trx, circleId, userId, MANAGERS);
    const endpoint = await repo.lockEndpoint(trx, circleId, webhookId, 'edit');
    if (!endpoint) throw notFound('webhook');
    const rotated = await repo.replaceSecret(trx, circleId, webhookId, secret, SECRET_GRACE_MS);
    await recordEvent(trx, {
      circleId,
      type: 'webhook.secret_rotated',
      subjectId: webhookId,
      actorId: userId,
      payload: { previousSecretExpiresAt: retiredSecretsSignUntil(rotated.retired_secrets)?.toISOString() ?? null },
    });
    return rotated;
  });
  return { ...toWebhookView(endpoint), secret };
}

const toDeliveryView = (a: Awaited<ReturnType<typeof repo.listAttempts>>[number]) => ({
  id: a.id,
  webhookId: a.endpoint_id,
  messageId: a.message_id,
  eventId: a.event_id,
  eventType: a.event_type,
  attempt: a.attempt,
  trigger: a.trigger,
  status: a.outcome === 'succeeded' ? ('succeeded' as const) : ('failed' as const),
  outcome: a.outcome,
  responseStatus: a.response_status,
  durationMs: a.duration_ms,
  error: a.error,
  startedAt: a.started_at,
  finishedAt: a.finished_at,
});

export async function listDeliveries(
  ctx: AppContext,
  userId: string,
  circleId: string,
  webhookId: string,
  limit: number,
  cursor?: string,
) {
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  if (!(await repo.findEndpoint(ctx.db, circleId, webhookId))) throw notFound('webhook');
  const before = decodeCursor(cursor, ['number']) as [number] | null;
  const rows = await repo.listAttempts(ctx.db, circleId, webhookId, limit, before?.[0] ?? null);
  const page = pageOf(rows, limit, (r) => [r.seq]);
  return { items: page.items.map(toDeliveryView), nextCursor: page.nextCursor };
}

/**
 * One more attempt of the message a delivery belongs to, with the same `webhook-id`. Only for a
 * message that is finished (succeeded or failed) and an enabled endpoint.
 */
export async function redeliver(
  ctx: AppContext,
  userId: string,
  circleId: string,
  webhookId: string,
  deliveryId: string,
) {
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  const queued = await ctx.db.transaction().execute(async (trx) => {
    await requireRole(trx, circleId, userId, MANAGERS);
    const endpoint = await repo.lockEndpoint(trx, circleId, webhookId, 'edit');
    if (!endpoint) throw notFound('webhook');
    const delivery = await repo.findAttempt(trx, circleId, webhookId, deliveryId);
    if (!delivery) throw notFound('delivery');
    if (!endpoint.enabled)
      throw conflict('webhook_disabled', 'The webhook is disabled; enable it before redelivering.');
    const message = await repo.lockMessage(trx, circleId, delivery.message_id);
    if (!message) throw notFound('delivery');
    if (message.status === 'pending')
      throw conflict('delivery_in_progress', 'This message is still being delivered; wait for it to finish.');
    const attempt = message.attempts + 1;
    const dueAt = new Date();
    await repo.updateMessage(trx, circleId, message.id, {
      status: 'pending',
      final_attempt: attempt,
      redelivery: true,
      next_attempt_at: dueAt,
      completed_at: null,
    });
    await recordEvent(trx, {
      circleId,
      type: 'webhook.redelivery_requested',
      subjectId: webhookId,
      actorId: userId,
      payload: { messageId: message.id, eventId: message.event_id, attempt },
    });
    return { messageId: message.id, attempt, dueAt };
  });
  const { messageId, attempt } = queued;
  // Its own job even when a job of this attempt number already exists (see deliveryJobKey).
  await enqueueDelivery(ctx.queues, ctx.log, { circleId, ...queued });
  return { webhookId, messageId, attempt, status: 'pending' as const };
}
