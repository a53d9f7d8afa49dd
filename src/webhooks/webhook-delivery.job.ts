import { UnrecoverableError } from 'bullmq';
import type { Transaction } from 'kysely';
import type { AppContext, Logger } from '../context.js';
import type { Config } from '../config.js';
import type { Database } from '../infra/database-schema.js';
import type { Queues } from '../jobs/queues.js';
import type { Processor } from '../jobs/worker-runtime.js';
import type { OutboxSubscriber } from '../events/outbox-relay.js';
import { recordEvent } from '../events/events.repository.js';
import { retryDelayMs } from './backoff.js';
import { postWebhook } from './http-delivery.js';
import { signedHeaders, signingSecrets } from './signing.js';
import * as repo from './webhooks.repository.js';
import { isUuid } from '../infra/uuid.js';

// Delivering webhook messages, at least once. Each attempt is its own job, keyed by message,
// attempt number and the time the attempt falls due (the message's next_attempt_at), so a job
// enqueued twice runs once and an attempt is recorded once: the result is written only if the
// message still waits for exactly that attempt (under its lock). A failed attempt schedules the
// next one with backoff; the last automatic one failing ends the message, and enough consecutive
// ended messages disable the endpoint. A sweep re-enqueues messages whose job was lost, under the
// same key. Messages are independent: no ordering between them is kept.

/** How late a pending message's attempt must be before the sweep thinks its job lost. */
const OVERDUE_GRACE_MS = 60_000;
const SWEEP_BATCH = 500;
/** How often the sweep gives an attempt's finished job a new life before it ends the message. */
export const MAX_SWEEP_RETRIES = 3;

/**
 * The business key of one attempt. The due time is part of it because an attempt number alone
 * can come round again: an endpoint disabled while a retry waited in its backoff and then
 * re-enabled gets a redelivery with that same number, and BullMQ would ignore it while the old
 * job waits or is kept as finished. A re-enqueue of a lost job reads the same due time from the
 * message, so it still de-duplicates.
 */
export const deliveryJobKey = (messageId: string, attempt: number, dueAt: Date) =>
  `webhook-delivery:${messageId}:${attempt}:${dueAt.getTime()}`;

/**
 * Enqueues one attempt of a message, due at `dueAt` (the message's next_attempt_at as stored); a
 * failure is logged and left to the sweep.
 */
export async function enqueueDelivery(
  queues: Queues,
  log: Logger,
  { dueAt, ...message }: { circleId: string; messageId: string; attempt: number; dueAt: Date },
  delayMs = 0,
): Promise<void> {
  try {
    await queues.add(
      'webhook-delivery',
      { ...message, dueAt: dueAt.getTime() },
      {
        jobId: deliveryJobKey(message.messageId, message.attempt, dueAt),
        ...(delayMs > 0 ? { delay: delayMs } : {}),
      },
    );
  } catch (err) {
    log.warn({ err, messageId: message.messageId }, 'could not enqueue a webhook delivery; the sweep will');
  }
}

/**
 * Disables an endpoint (its row locked by the caller) and ends its pending messages, with the
 * event saying so, in the caller's transaction.
 */
export async function disableEndpoint(
  trx: Transaction<Database>,
  endpoint: repo.EndpointRow,
  reason: 'failing' | 'manual',
  actorId: string | null,
): Promise<repo.EndpointRow> {
  const disabled = await repo.markDisabled(trx, endpoint.circle_id, endpoint.id, reason);
  await repo.failPendingMessages(trx, endpoint.circle_id, endpoint.id);
  await recordEvent(trx, {
    circleId: endpoint.circle_id,
    type: 'webhook.disabled',
    subjectId: endpoint.id,
    actorId,
    payload: { reason, failedMessages: endpoint.failure_streak },
  });
  return disabled;
}

/**
 * Whether a message is still where the job for its attempt `attempt`, due at `dueAt`, found it. The
 * attempt number alone can come round again: a message whose retry was waiting when its endpoint was
 * disabled, then redelivered, wants the same number, under a new due time. The old job (or its
 * POST still in flight) must neither send nor record in the redelivery's place.
 */
const stillDue = (
  m: { status: string; attempts: number; next_attempt_at: Date | null },
  attempt: number,
  dueAt: number | undefined,
) =>
  m.status === 'pending' &&
  m.attempts === attempt - 1 &&
  (dueAt === undefined || m.next_attempt_at?.getTime() === dueAt);

/** Makes attempt `attempt` of a message and records it; returns what happened. */
export async function deliverAttempt(
  ctx: AppContext,
  circleId: string,
  messageId: string,
  attempt: number,
  dueAt?: number,
): Promise<string> {
  const m = await repo.findMessageForDelivery(ctx.db, circleId, messageId);
  const due = m !== undefined && stillDue(m, attempt, dueAt);
  if (!m || !due || !m.url || !m.secret) return 'skipped';
  if (!m.enabled) return endIfDisabled(ctx, circleId, m.endpoint_id, messageId);
  const startedAt = new Date();
  const secrets = signingSecrets({ secret: m.secret, retired_secrets: m.retired_secrets ?? [] }, startedAt.getTime());
  const headers = signedHeaders(secrets, m.id, Math.floor(startedAt.getTime() / 1000), m.body);
  const settings = ctx.config.webhooks;
  const result = await postWebhook(m.url, headers, m.body, {
    timeoutMs: settings.timeoutMs,
    allowPrivate: settings.allowPrivate,
  });
  if (result.outcome === 'refused')
    ctx.log.warn({ webhookId: m.endpoint_id, messageId, reason: result.error }, 'webhook delivery refused');

  const retryIn = await ctx.db.transaction().execute(async (trx) => {
    // The endpoint before the message, as everywhere that locks both.
    const endpoint = await repo.lockEndpoint(trx, circleId, m.endpoint_id, 'edit');
    const locked = await repo.lockMessage(trx, circleId, messageId);
    if (!endpoint || !locked || !stillDue(locked, attempt, dueAt)) return 'stale';
    await repo.insertAttempt(trx, {
      circle_id: circleId,
      endpoint_id: locked.endpoint_id,
      message_id: messageId,
      attempt,
      trigger: locked.redelivery ? 'redelivery' : 'automatic',
      outcome: result.outcome,
      response_status: result.responseStatus,
      duration_ms: result.durationMs,
      error: result.error,
      started_at: startedAt,
    });
    const succeeded = result.outcome === 'succeeded';
    if (!succeeded && attempt < locked.final_attempt) {
      const delay = retryDelayMs(attempt + 1, settings.retryBaseMs);
      const dueAt = new Date(Date.now() + delay);
      await repo.updateMessage(trx, circleId, messageId, { attempts: attempt, next_attempt_at: dueAt });
      return { delay, dueAt };
    }
    await repo.updateMessage(trx, circleId, messageId, {
      status: succeeded ? 'succeeded' : 'failed',
      attempts: attempt,
      next_attempt_at: null,
      completed_at: new Date(),
    });
    if (succeeded) {
      if (endpoint.failure_streak > 0) await repo.updateEndpoint(trx, circleId, endpoint.id, { failure_streak: 0 });
    } else if (!locked.redelivery) {
      // A message that used up its automatic attempts: one more in the endpoint's failing streak.
      const streak = endpoint.failure_streak + 1;
      const counted = await repo.updateEndpoint(trx, circleId, endpoint.id, { failure_streak: streak });
      if (streak >= settings.disableAfterFailures && counted.enabled) {
        // Disabling waits for a fan-out in flight (lockEndpoint says why).
        await repo.lockEndpoint(trx, circleId, endpoint.id, 'end');
        await disableEndpoint(trx, counted, 'failing', null);
      }
    }
    return succeeded ? 'succeeded' : 'failed';
  });
  if (typeof retryIn === 'object') {
    const { delay, dueAt } = retryIn;
    await enqueueDelivery(ctx.queues, ctx.log, { circleId, messageId, attempt: attempt + 1, dueAt }, delay);
    return 'retrying';
  }
  return retryIn;
}

/**
 * Ends a pending message of a disabled endpoint as failed, sending nothing. Disabling ends the
 * endpoint's pending messages, but the outbox relay may have read the endpoint as enabled just
 * before and commit a message after: without this it would stay pending for good. Not counted in
 * the endpoint's failing streak: no attempt was made.
 */
async function endIfDisabled(
  ctx: AppContext,
  circleId: string,
  endpointId: string,
  messageId: string,
): Promise<'failed' | 'stale'> {
  return ctx.db.transaction().execute(async (trx) => {
    const endpoint = await repo.lockEndpoint(trx, circleId, endpointId, 'edit');
    const locked = await repo.lockMessage(trx, circleId, messageId);
    // Re-enabled in the meantime (its message is deliverable again) or finished elsewhere.
    if (!endpoint || endpoint.enabled || locked?.status !== 'pending') return 'stale';
    await repo.updateMessage(trx, circleId, messageId, {
      status: 'failed',
      next_attempt_at: null,
      completed_at: new Date(),
    });
    return 'failed';
  });
}

export const webhookDeliveryProcessor: Processor<'webhook-delivery'> = async (
  { circleId, messageId, attempt, dueAt },
  ctx,
) => {
  if (!isUuid(circleId) || !isUuid(messageId))
    throw new UnrecoverableError(`invalid webhook message ${JSON.stringify({ circleId, messageId })}`);
  if (!Number.isSafeInteger(attempt) || attempt < 1)
    throw new UnrecoverableError(`invalid attempt number ${JSON.stringify(attempt)}`);
  if (dueAt !== undefined && !Number.isSafeInteger(dueAt))
    throw new UnrecoverableError(`invalid due time ${JSON.stringify(dueAt)}`);
  return { result: await deliverAttempt(ctx, circleId, messageId, attempt, dueAt) };
};

/**
 * The outbox relay's webhook step: writes the batch's messages in the relay's transaction, and
 * once that has committed enqueues their first attempts (a job must never find its message not
 * yet committed; one lost in between is the sweep's).
 */
export function webhookFanOut(config: Config, log: Logger): OutboxSubscriber {
  return async (trx, events) => {
    const messages = await repo.fanOutEvents(
      trx,
      events.map((e) => e.id),
      config.webhooks.maxAttempts,
    );
    if (messages.length === 0) return undefined;
    return async (queues) => {
      for (const m of messages)
        await enqueueDelivery(queues, log, {
          circleId: m.circle_id,
          messageId: m.id,
          attempt: 1,
          dueAt: m.next_attempt_at,
        });
    };
  };
}

/**
 * The safety net for lost delivery jobs: re-enqueues every pending message whose attempt is
 * overdue, under the key its lost job had (the same due time), so a job that is merely late is
 * not doubled. A job that failed for good under that key (its store or the database unreachable
 * through all its retries) is retried in place: adding it again would be a no-op while it is kept.
 */
export async function requeueOverdueMessages(
  ctx: Pick<AppContext, 'db' | 'queues' | 'log'>,
  graceMs = OVERDUE_GRACE_MS,
): Promise<number> {
  const due = await repo.overdueMessages(ctx.db, graceMs, SWEEP_BATCH);
  for (const m of due) {
    const attempt = m.attempts + 1;
    const done = await ctx.queues.requeue(
      'webhook-delivery',
      { circleId: m.circle_id, messageId: m.id, attempt, dueAt: m.next_attempt_at.getTime() },
      { jobId: deliveryJobKey(m.id, attempt, m.next_attempt_at) },
      MAX_SWEEP_RETRIES,
    );
    if (done === 'retried')
      ctx.log.warn({ messageId: m.id, attempt }, 'overdue webhook attempt had a finished job; retried it');
    if (done === 'exhausted') {
      ctx.log.error({ messageId: m.id, attempt }, 'webhook attempt job kept ending without running; message ended');
      await endUndeliverable(ctx.db, m.circle_id, m.id, m.attempts);
    }
  }
  return due.length;
}

/**
 * Ends, as failed, a message whose attempt's job kept dying before it could record anything (the
 * sweep gave up on it): retried for ever, it would take a worker down each time. Not counted in
 * the endpoint's failing streak, since the receiver was never the problem.
 */
async function endUndeliverable(db: AppContext['db'], circleId: string, messageId: string, attempts: number) {
  await db.transaction().execute(async (trx) => {
    const locked = await repo.lockMessage(trx, circleId, messageId);
    if (locked?.status !== 'pending' || locked.attempts !== attempts) return;
    await repo.updateMessage(trx, circleId, messageId, {
      status: 'failed',
      next_attempt_at: null,
      completed_at: new Date(),
    });
  });
}
