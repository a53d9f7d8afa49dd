import { sql, type Kysely } from 'kysely';

// Webhooks: a circle's endpoints, one message per event and endpoint (its id is the
// `webhook-id` receivers de-duplicate on; the body is stored so every attempt sends the same
// bytes), and one row per delivery attempt (the delivery log). Keys lead with circle_id, so the
// tables distribute by circle like the rest. Deleting an endpoint deletes its log.
// - failure_streak: consecutive messages that used up their automatic attempts; reset by any
//   success. The endpoint is disabled when it reaches the configured limit.
// - previous_secret: the secret before the last rotation, still signing until its expiry.
// - final_attempt: the last attempt number the message may reach (the retry schedule's end, or
//   the one attempt a redelivery asks for); redelivery marks a message whose next attempt was
//   asked for by hand (its failure does not count towards disabling the endpoint).
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE webhook_endpoints (
      circle_id       uuid NOT NULL REFERENCES circles(id) ON DELETE CASCADE,
      id              uuid NOT NULL DEFAULT gen_random_uuid(),
      url             text NOT NULL,
      events          text[] NOT NULL CHECK (cardinality(events) > 0),
      description     text NOT NULL DEFAULT '',
      enabled         boolean NOT NULL DEFAULT true,
      disabled_at     timestamptz,
      disabled_reason text CHECK (disabled_reason IN ('failing', 'manual')),
      secret          text NOT NULL,
      previous_secret text,
      previous_secret_expires_at timestamptz,
      failure_streak  integer NOT NULL DEFAULT 0 CHECK (failure_streak >= 0),
      created_by      uuid NOT NULL REFERENCES users(id),
      created_at      timestamptz NOT NULL DEFAULT now(),
      updated_at      timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (circle_id, id),
      CHECK (enabled = (disabled_at IS NULL) AND enabled = (disabled_reason IS NULL)),
      CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL))
    );
    CREATE UNIQUE INDEX webhook_endpoints_id_idx ON webhook_endpoints (id);
    CREATE INDEX webhook_endpoints_list_idx ON webhook_endpoints (circle_id, created_at, id);

    CREATE TABLE webhook_messages (
      circle_id       uuid NOT NULL,
      id              uuid NOT NULL DEFAULT gen_random_uuid(),
      endpoint_id     uuid NOT NULL,
      event_id        bigint NOT NULL,
      event_type      text NOT NULL,
      body            text NOT NULL,
      status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
      attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
      final_attempt   integer NOT NULL CHECK (final_attempt >= 1),
      redelivery      boolean NOT NULL DEFAULT false,
      next_attempt_at timestamptz,
      created_at      timestamptz NOT NULL DEFAULT now(),
      completed_at    timestamptz,
      PRIMARY KEY (circle_id, id),
      FOREIGN KEY (circle_id, endpoint_id) REFERENCES webhook_endpoints (circle_id, id) ON DELETE CASCADE,
      UNIQUE (circle_id, endpoint_id, event_id),
      CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL)),
      CHECK ((status = 'pending') = (completed_at IS NULL))
    );
    -- What the sweep looks for: messages whose next attempt is overdue (a lost job).
    CREATE INDEX webhook_messages_due_idx ON webhook_messages (next_attempt_at) WHERE status = 'pending';

    CREATE TABLE webhook_attempts (
      circle_id       uuid NOT NULL,
      id              uuid NOT NULL DEFAULT gen_random_uuid(),
      seq             bigint GENERATED ALWAYS AS IDENTITY,
      endpoint_id     uuid NOT NULL,
      message_id      uuid NOT NULL,
      attempt         integer NOT NULL CHECK (attempt >= 1),
      trigger         text NOT NULL CHECK (trigger IN ('automatic', 'redelivery')),
      outcome         text NOT NULL CHECK (outcome IN ('succeeded', 'http_error', 'timeout', 'refused', 'network_error')),
      response_status integer,
      duration_ms     integer NOT NULL CHECK (duration_ms >= 0),
      error           text,
      started_at      timestamptz NOT NULL,
      finished_at     timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (circle_id, id),
      FOREIGN KEY (circle_id, message_id) REFERENCES webhook_messages (circle_id, id) ON DELETE CASCADE,
      UNIQUE (circle_id, message_id, attempt)
    );
    CREATE UNIQUE INDEX webhook_attempts_id_idx ON webhook_attempts (id);
    CREATE INDEX webhook_attempts_log_idx ON webhook_attempts (circle_id, endpoint_id, seq);
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE webhook_attempts, webhook_messages, webhook_endpoints`.execute(db);
}
