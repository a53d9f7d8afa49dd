import { sql, type Kysely } from 'kysely';

// Accounts, circles, membership, idempotency keys and the event outbox.
// Frozen in time: this file imports nothing from src/ and is never edited once released.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE users (
      id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      handle        text NOT NULL CHECK (char_length(handle) BETWEEN 3 AND 30),
      password_hash text NOT NULL,
      display_name  text NOT NULL,
      skills        text[] NOT NULL DEFAULT '{}',
      created_at    timestamptz NOT NULL DEFAULT now()
    );
    -- Handles are unique regardless of case: "Ann" and "ann" are one person.
    CREATE UNIQUE INDEX users_handle_lower_key ON users (lower(handle));

    CREATE TABLE refresh_tokens (
      id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      -- All tokens descended from one login share a family; reuse of a rotated token revokes it.
      family_id   uuid NOT NULL,
      token_hash  bytea NOT NULL UNIQUE,
      expires_at  timestamptz NOT NULL,
      rotated_at  timestamptz,
      revoked_at  timestamptz,
      created_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

    CREATE TABLE circles (
      id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name        text NOT NULL,
      description text NOT NULL DEFAULT '',
      join_policy text NOT NULL CHECK (join_policy IN ('open', 'invite')),
      owner_id    uuid NOT NULL REFERENCES users(id),
      created_at  timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE memberships (
      circle_id  uuid NOT NULL REFERENCES circles(id) ON DELETE CASCADE,
      user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
      joined_at  timestamptz NOT NULL DEFAULT now(),
      left_at    timestamptz,
      PRIMARY KEY (circle_id, user_id)
    );
    -- The database, not the code, guarantees a circle never has two current owners.
    CREATE UNIQUE INDEX memberships_one_owner ON memberships (circle_id) WHERE role = 'owner' AND left_at IS NULL;
    CREATE INDEX memberships_user_idx ON memberships (user_id) WHERE left_at IS NULL;
    CREATE INDEX memberships_page_idx ON memberships (circle_id, joined_at, user_id) WHERE left_at IS NULL;

    CREATE TABLE invites (
      code        text PRIMARY KEY,
      circle_id   uuid NOT NULL REFERENCES circles(id) ON DELETE CASCADE,
      created_by  uuid NOT NULL REFERENCES users(id),
      expires_at  timestamptz NOT NULL,
      max_uses    integer CHECK (max_uses > 0),
      uses        integer NOT NULL DEFAULT 0,
      created_at  timestamptz NOT NULL DEFAULT now(),
      CHECK (max_uses IS NULL OR uses <= max_uses)
    );

    CREATE TABLE idempotency_keys (
      user_id          uuid NOT NULL,
      key              text NOT NULL,
      request_hash     bytea NOT NULL,
      response_status  integer,
      response_type    text,
      response_body    text,
      created_at       timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (user_id, key)
    );
    CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

    -- The outbox: written in the same transaction as the change it describes.
    CREATE TABLE events (
      id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      circle_id   uuid,
      type        text NOT NULL,
      subject_id  uuid,
      actor_id    uuid,
      payload     jsonb NOT NULL DEFAULT '{}',
      created_at  timestamptz NOT NULL DEFAULT now(),
      relayed_at  timestamptz
    );
    CREATE INDEX events_circle_idx ON events (circle_id, id);
    CREATE INDEX events_unrelayed_idx ON events (id) WHERE relayed_at IS NULL;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE events, idempotency_keys, invites, memberships, circles, refresh_tokens, users`.execute(db);
}
