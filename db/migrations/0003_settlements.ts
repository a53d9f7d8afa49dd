import { sql, type Kysely } from 'kysely';

// Settlements, payouts and the double-entry money ledger; a fingerprint on every contribution so
// the invariant check can prove no row was changed after it was written.
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE settlements (
      id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      circle_id        uuid NOT NULL,
      project_id       uuid NOT NULL REFERENCES projects(id),
      status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'completed', 'failed')),
      pool_amount      bigint NOT NULL CHECK (pool_amount >= 0),
      unit             text NOT NULL,
      -- The frozen cutoff: contributions of the project with id <= this count.
      cutoff_id        bigint NOT NULL,
      min_points       bigint,
      cap_basis_points integer CHECK (cap_basis_points BETWEEN 0 AND 10000),
      total_points     numeric,
      distributed      bigint,
      undistributed    bigint,
      payee_count      integer,
      result_hash      text,
      failure_reason   text,
      attempts         integer NOT NULL DEFAULT 0,
      requested_by     uuid NOT NULL REFERENCES users(id),
      created_at       timestamptz NOT NULL DEFAULT now(),
      completed_at     timestamptz,
      CHECK (status <> 'completed' OR (result_hash IS NOT NULL AND distributed + undistributed = pool_amount))
    );
    -- A project is settled once: at most one settlement that has not failed.
    CREATE UNIQUE INDEX settlements_once_per_project ON settlements (project_id) WHERE status <> 'failed';
    CREATE INDEX settlements_unfinished_idx ON settlements (created_at) WHERE status IN ('pending', 'running');

    CREATE TABLE payouts (
      settlement_id     uuid NOT NULL REFERENCES settlements(id),
      user_id           uuid NOT NULL REFERENCES users(id),
      circle_id         uuid NOT NULL,
      rank              integer NOT NULL,
      points            bigint NOT NULL,
      amount            bigint NOT NULL CHECK (amount >= 0),
      share_numerator   numeric NOT NULL,
      share_denominator numeric NOT NULL CHECK (share_denominator > 0),
      rounded_up        boolean NOT NULL,
      capped            boolean NOT NULL,
      PRIMARY KEY (settlement_id, user_id)
    );
    CREATE UNIQUE INDEX payouts_rank_idx ON payouts (settlement_id, rank);

    -- Double-entry ledger. An account belongs to a circle and a unit; its owner is the project
    -- (pool), the member (balance) or the circle (owner funding). Balances are kept on the account
    -- and must always equal the sum of its entries (checked by the invariant check).
    CREATE TABLE ledger_accounts (
      id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      circle_id  uuid NOT NULL,
      kind       text NOT NULL CHECK (kind IN ('project_pool', 'member_balance', 'owner_funding')),
      owner_id   uuid NOT NULL,
      unit       text NOT NULL,
      balance    bigint NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (circle_id, kind, owner_id, unit)
    );
    CREATE INDEX ledger_accounts_owner_idx ON ledger_accounts (owner_id, kind);

    CREATE TABLE ledger_transactions (
      id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      circle_id     uuid NOT NULL,
      kind          text NOT NULL CHECK (kind IN ('pool_funding', 'settlement_payout')),
      settlement_id uuid REFERENCES settlements(id),
      description   text NOT NULL,
      created_at    timestamptz NOT NULL DEFAULT now(),
      UNIQUE (settlement_id, kind)
    );

    CREATE TABLE ledger_entries (
      id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      transaction_id uuid NOT NULL REFERENCES ledger_transactions(id),
      account_id     uuid NOT NULL REFERENCES ledger_accounts(id),
      amount         bigint NOT NULL CHECK (amount <> 0),
      created_at     timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX ledger_entries_account_idx ON ledger_entries (account_id, id);
    CREATE INDEX ledger_entries_transaction_idx ON ledger_entries (transaction_id);

    -- Each contribution's fingerprint, fixed at insert: recomputing it later proves the row is
    -- as written, even if someone disabled the append-only trigger.
    ALTER TABLE contributions ADD COLUMN fingerprint text;
    CREATE FUNCTION contribution_fingerprint(c contributions) RETURNS text LANGUAGE sql IMMUTABLE AS $$
      SELECT md5(concat_ws('|', c.id, c.circle_id, c.project_id, c.user_id, c.source, c.task_id, c.claim_id, c.points, c.reason, c.created_by,
                           to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')))
    $$;
    CREATE FUNCTION set_contribution_fingerprint() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      NEW.fingerprint := contribution_fingerprint(NEW);
      RETURN NEW;
    END $$;
    CREATE TRIGGER contributions_fingerprint BEFORE INSERT ON contributions
      FOR EACH ROW EXECUTE FUNCTION set_contribution_fingerprint();
    ALTER TABLE contributions DISABLE TRIGGER contributions_append_only;
    UPDATE contributions c SET fingerprint = contribution_fingerprint(c);
    ALTER TABLE contributions ENABLE TRIGGER contributions_append_only;
    ALTER TABLE contributions ALTER COLUMN fingerprint SET NOT NULL;
    CREATE INDEX contributions_settlement_idx ON contributions (project_id, id) INCLUDE (user_id, points, created_at);
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP INDEX contributions_settlement_idx;
    DROP TRIGGER contributions_fingerprint ON contributions;
    ALTER TABLE contributions DROP COLUMN fingerprint;
    DROP FUNCTION set_contribution_fingerprint();
    DROP FUNCTION contribution_fingerprint(contributions);
    DROP TABLE ledger_entries, ledger_transactions, ledger_accounts, payouts, settlements;
  `.execute(db);
}
