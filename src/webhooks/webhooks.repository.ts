import { type Insertable, type Selectable, sql, type Transaction } from 'kysely';
import type {
  Database,
  WebhookAttemptOutcome,
  WebhookAttemptsTable,
  WebhookEndpointsTable,
  WebhookMessagesTable,
} from '../infra/database-schema.js';
import type { Db, Executor } from '../infra/postgres.js';
import { micros, newestFirstPage } from '../infra/sql.js';
import { MAX_RETIRED_SECRETS } from './signing.js';

export type EndpointRow = Selectable<WebhookEndpointsTable>;
export type MessageRow = Selectable<WebhookMessagesTable>;
export type AttemptRow = Selectable<WebhookAttemptsTable>;

export async function insertEndpoint(
  trx: Transaction<Database>,
  row: Pick<EndpointRow, 'circle_id' | 'url' | 'events' | 'description' | 'secret' | 'created_by'>,
): Promise<EndpointRow> {
  return trx.insertInto('webhook_endpoints').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function findEndpoint(db: Executor, circleId: string, endpointId: string) {
  return db
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('circle_id', '=', circleId)
    .where('id', '=', endpointId)
    .executeTakeFirst();
}

/**
 * The endpoint's row, locked until the transaction ends. The outbox relay's fan-out checks each
 * message's endpoint with a KEY SHARE lock it holds until its whole batch commits. `'edit'` (FOR
 * NO KEY UPDATE), for changes that leave the endpoint enabled, lets that lock be: an edit or a
 * delivery record does not wait for a batch. `'end'` (FOR UPDATE), to disable or delete it, waits
 * for a fan-out in flight, so the messages it commits are among the pending ones disabling ends.
 */
export async function lockEndpoint(
  trx: Transaction<Database>,
  circleId: string,
  endpointId: string,
  purpose: 'edit' | 'end',
) {
  const q = trx
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('circle_id', '=', circleId)
    .where('id', '=', endpointId);
  return (purpose === 'end' ? q.forUpdate() : q.forNoKeyUpdate()).executeTakeFirst();
}

/** The circle's endpoints, newest first, keyset-paginated on (created_at in µs, id). */
export async function listEndpoints(db: Db, circleId: string, limit: number, after: [number, string] | null) {
  const q = db
    .selectFrom('webhook_endpoints')
    .selectAll()
    .select(micros('webhook_endpoints.created_at').as('cursor_ts'))
    .where('circle_id', '=', circleId);
  return newestFirstPage(q, limit, after).execute();
}

export async function updateEndpoint(
  trx: Transaction<Database>,
  circleId: string,
  endpointId: string,
  changes: Partial<
    Pick<
      EndpointRow,
      'url' | 'events' | 'description' | 'enabled' | 'disabled_at' | 'disabled_reason' | 'secret' | 'failure_streak'
    >
  >,
): Promise<EndpointRow> {
  return trx
    .updateTable('webhook_endpoints')
    .set({ ...changes, updated_at: sql<Date>`now()` })
    .where('circle_id', '=', circleId)
    .where('id', '=', endpointId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Disables the endpoint as of the transaction's time (the time its disabling event carries). */
export async function markDisabled(
  trx: Transaction<Database>,
  circleId: string,
  endpointId: string,
  reason: 'failing' | 'manual',
): Promise<EndpointRow> {
  return trx
    .updateTable('webhook_endpoints')
    .set({ enabled: false, disabled_at: sql<Date>`now()`, disabled_reason: reason, updated_at: sql<Date>`now()` })
    .where('circle_id', '=', circleId)
    .where('id', '=', endpointId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Makes `secret` the signing secret; the one it replaces keeps signing for `graceMs`, beside the
 * earlier ones still in their grace (the newest `MAX_RETIRED_SECRETS` of them).
 */
export async function replaceSecret(
  trx: Transaction<Database>,
  circleId: string,
  endpointId: string,
  secret: string,
  graceMs: number,
): Promise<EndpointRow> {
  return trx
    .updateTable('webhook_endpoints')
    .set({
      secret,
      // The row's values before the update: `secret` is the one being retired.
      retired_secrets: sql<never>`(
        SELECT coalesce(jsonb_agg(live.r ORDER BY live.until DESC), '[]'::jsonb) FROM (
          SELECT r, until FROM (
            SELECT jsonb_build_object('secret', secret, 'expiresAt', now() + make_interval(secs => ${graceMs / 1000})) AS r,
                   now() + make_interval(secs => ${graceMs / 1000}) AS until
            UNION ALL
            SELECT r, (r->>'expiresAt')::timestamptz FROM jsonb_array_elements(retired_secrets) AS r
          ) every
          WHERE until > now()
          ORDER BY until DESC
          LIMIT ${MAX_RETIRED_SECRETS}
        ) live)`,
      updated_at: sql<Date>`now()`,
    })
    .where('circle_id', '=', circleId)
    .where('id', '=', endpointId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function deleteEndpoint(trx: Transaction<Database>, circleId: string, endpointId: string) {
  await trx.deleteFrom('webhook_endpoints').where('circle_id', '=', circleId).where('id', '=', endpointId).execute();
}

/**
 * Writes one message per event of `eventIds` and enabled endpoint of the event's circle that
 * subscribes to its type (created before the event), with the body every attempt will send.
 * Notices meant for one member alone never leave the service. Runs in the outbox relay's
 * transaction, so a relayed event has its messages; ON CONFLICT makes a second relay harmless.
 */
export async function fanOutEvents(trx: Transaction<Database>, eventIds: number[], maxAttempts: number) {
  if (eventIds.length === 0) return [];
  const rows = await sql<{ circle_id: string; id: string; next_attempt_at: Date }>`
    INSERT INTO webhook_messages (circle_id, endpoint_id, event_id, event_type, body, final_attempt, next_attempt_at)
    SELECT w.circle_id, w.id, e.id, e.type,
           jsonb_build_object(
             'type', e.type,
             'timestamp', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'data', jsonb_build_object(
               'eventId', e.id, 'circleId', e.circle_id, 'subjectId', e.subject_id,
               'actorId', e.actor_id, 'recipientId', e.recipient_id, 'payload', e.payload))::text,
           ${maxAttempts}, now()
    FROM events e
    JOIN webhook_endpoints w ON w.circle_id = e.circle_id AND w.enabled AND w.created_at <= e.created_at
      AND (e.type = ANY (w.events) OR '*' = ANY (w.events))
    WHERE e.id = ANY (${eventIds}::bigint[]) AND NOT e.recipient_only
    ORDER BY e.id, w.id
    ON CONFLICT DO NOTHING
    RETURNING circle_id, id, next_attempt_at`.execute(trx);
  return rows.rows;
}

/** A message with what delivering it needs from its endpoint (null fields: the endpoint is gone). */
export async function findMessageForDelivery(db: Executor, circleId: string, messageId: string) {
  return db
    .selectFrom('webhook_messages as m')
    .leftJoin('webhook_endpoints as w', (join) =>
      join.onRef('w.circle_id', '=', 'm.circle_id').onRef('w.id', '=', 'm.endpoint_id'),
    )
    .select([
      'm.circle_id',
      'm.id',
      'm.endpoint_id',
      'm.event_id',
      'm.body',
      'm.status',
      'm.attempts',
      'm.final_attempt',
      'm.next_attempt_at',
      'w.url',
      'w.enabled',
      'w.secret',
      'w.retired_secrets',
    ])
    .where('m.circle_id', '=', circleId)
    .where('m.id', '=', messageId)
    .executeTakeFirst();
}

export async function lockMessage(trx: Transaction<Database>, circleId: string, messageId: string) {
  return trx
    .selectFrom('webhook_messages')
    .selectAll()
    .where('circle_id', '=', circleId)
    .where('id', '=', messageId)
    .forUpdate()
    .executeTakeFirst();
}

export async function updateMessage(
  trx: Transaction<Database>,
  circleId: string,
  messageId: string,
  changes: Partial<
    Pick<MessageRow, 'status' | 'attempts' | 'final_attempt' | 'redelivery' | 'next_attempt_at' | 'completed_at'>
  >,
) {
  await trx
    .updateTable('webhook_messages')
    .set(changes)
    .where('circle_id', '=', circleId)
    .where('id', '=', messageId)
    .execute();
}

export async function insertAttempt(
  trx: Transaction<Database>,
  // The table's own insert shape, less what Postgres fills in.
  row: Omit<Insertable<WebhookAttemptsTable>, 'id' | 'seq' | 'finished_at'>,
) {
  await trx.insertInto('webhook_attempts').values(row).execute();
}

/** Ends every pending message of an endpoint being disabled: nothing more is sent to it. */
export async function failPendingMessages(trx: Transaction<Database>, circleId: string, endpointId: string) {
  await trx
    .updateTable('webhook_messages')
    .set({ status: 'failed', next_attempt_at: null, completed_at: sql<Date>`now()` })
    .where('circle_id', '=', circleId)
    .where('endpoint_id', '=', endpointId)
    .where('status', '=', 'pending')
    .execute();
}

/** An endpoint's delivery attempts with their message's event, newest first (keyset on seq). */
export async function listAttempts(db: Db, circleId: string, endpointId: string, limit: number, before: number | null) {
  let q = db
    .selectFrom('webhook_attempts as a')
    .innerJoin('webhook_messages as m', (join) =>
      join.onRef('m.circle_id', '=', 'a.circle_id').onRef('m.id', '=', 'a.message_id'),
    )
    .selectAll('a')
    .select(['m.event_id', 'm.event_type'])
    .where('a.circle_id', '=', circleId)
    .where('a.endpoint_id', '=', endpointId);
  if (before !== null) q = q.where('a.seq', '<', before);
  return q
    .orderBy('a.seq', 'desc')
    .limit(limit + 1)
    .execute();
}

export async function findAttempt(db: Executor, circleId: string, endpointId: string, attemptId: string) {
  return db
    .selectFrom('webhook_attempts')
    .selectAll()
    .where('circle_id', '=', circleId)
    .where('endpoint_id', '=', endpointId)
    .where('id', '=', attemptId)
    .executeTakeFirst();
}

/**
 * Pending messages whose next attempt is overdue by `graceMs` (a lost job), with the time it fell
 * due. Those of a disabled endpoint are included: their job ends them (a message the relay
 * committed just as its endpoint was disabled), which a lost job would never do.
 */
export async function overdueMessages(db: Db, graceMs: number, limit: number) {
  return db
    .selectFrom('webhook_messages as m')
    .select(['m.circle_id', 'm.id', 'm.attempts', 'm.next_attempt_at'])
    .where('m.status', '=', 'pending')
    .where('m.next_attempt_at', '<', sql<Date>`now() - make_interval(secs => ${graceMs / 1000})`)
    .orderBy('m.next_attempt_at')
    .limit(limit)
    .$narrowType<{ next_attempt_at: Date }>()
    .execute();
}

/**
 * Delivery attempts by outcome since the service began, for the metrics endpoint: succeeded,
 * http_error, timeout, refused, network_error (each present, zero when none).
 */
export async function deliveryCountsByOutcome(db: Executor): Promise<Record<WebhookAttemptOutcome, number>> {
  const rows = await db
    .selectFrom('webhook_attempts')
    .select(['outcome', sql<number>`count(*)::int`.as('count')])
    .groupBy('outcome')
    .execute();
  const counts: Record<WebhookAttemptOutcome, number> = {
    succeeded: 0,
    http_error: 0,
    timeout: 0,
    refused: 0,
    network_error: 0,
  };
  for (const r of rows) counts[r.outcome] = r.count;
  return counts;
}
