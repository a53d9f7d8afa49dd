import { sql, type Kysely } from 'kysely';

// Projects, task trees, claims with leases, submissions, reviews and the contribution ledger.
// Frozen in time: imports nothing from src/.
// Every hot row carries circle_id so the tables can later be distributed by circle.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE projects (
      id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      circle_id             uuid NOT NULL REFERENCES circles(id) ON DELETE CASCADE,
      title                 text NOT NULL,
      description           text NOT NULL DEFAULT '',
      status                text NOT NULL CHECK (status IN ('draft', 'open', 'closed', 'settled', 'cancelled')),
      reward_amount         bigint NOT NULL DEFAULT 0 CHECK (reward_amount >= 0),
      reward_unit           text NOT NULL DEFAULT 'points',
      lease_seconds         integer NOT NULL CHECK (lease_seconds > 0),
      review_window_seconds integer NOT NULL CHECK (review_window_seconds > 0),
      created_by            uuid NOT NULL REFERENCES users(id),
      created_at            timestamptz NOT NULL DEFAULT now(),
      updated_at            timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX projects_circle_idx ON projects (circle_id, created_at, id);

    CREATE TABLE tasks (
      id                uuid PRIMARY KEY,
      circle_id         uuid NOT NULL,
      project_id        uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
      parent_id         uuid REFERENCES tasks(id),
      title             text NOT NULL,
      description       text NOT NULL DEFAULT '',
      weight            integer NOT NULL CHECK (weight BETWEEN 1 AND 1000000),
      skills            text[] NOT NULL DEFAULT '{}',
      slots             integer NOT NULL CHECK (slots BETWEEN 1 AND 1000),
      required_accepts  integer NOT NULL CHECK (required_accepts BETWEEN 1 AND 1000),
      priority          integer NOT NULL DEFAULT 0,
      depth             integer NOT NULL DEFAULT 0,
      is_leaf           boolean NOT NULL DEFAULT true,
      status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'cancelled')),
      -- Claims holding a slot (active or submitted). The CHECK makes the database itself refuse
      -- more live claims than slots, whatever the code does.
      live_claims       integer NOT NULL DEFAULT 0 CHECK (live_claims >= 0 AND live_claims <= slots),
      accepted_count    integer NOT NULL DEFAULT 0 CHECK (accepted_count >= 0),
      -- Dependencies not yet done; 0 means unblocked.
      blocking_deps     integer NOT NULL DEFAULT 0 CHECK (blocking_deps >= 0),
      created_at        timestamptz NOT NULL DEFAULT now(),
      seq               bigint GENERATED ALWAYS AS IDENTITY
    );
    -- The claimable board: only rows a member could claim now, in the order claim-next wants them.
    CREATE INDEX tasks_claimable_idx ON tasks (project_id, priority DESC, seq)
      WHERE status = 'open' AND is_leaf AND blocking_deps = 0 AND live_claims < slots;
    CREATE INDEX tasks_project_idx ON tasks (project_id, seq);
    CREATE INDEX tasks_parent_idx ON tasks (parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX tasks_skills_idx ON tasks USING gin (skills);

    CREATE TABLE task_dependencies (
      task_id        uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
      depends_on_id  uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
      PRIMARY KEY (task_id, depends_on_id),
      CHECK (task_id <> depends_on_id)
    );
    CREATE INDEX task_dependencies_reverse_idx ON task_dependencies (depends_on_id);

    CREATE TABLE claims (
      id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      circle_id        uuid NOT NULL,
      project_id       uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
      task_id          uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
      user_id          uuid NOT NULL REFERENCES users(id),
      status           text NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'submitted', 'accepted', 'rejected', 'released', 'expired', 'revoked')),
      -- Which of the member's numbered claim slots (1..cap) this active claim occupies; the unique
      -- index below makes the per-member cap a database rule, race-free across processes.
      member_slot      integer,
      lease_started_at timestamptz NOT NULL DEFAULT now(),
      expires_at       timestamptz NOT NULL,
      revoke_reason    text,
      created_at       timestamptz NOT NULL DEFAULT now(),
      updated_at       timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX claims_one_live_per_member ON claims (task_id, user_id) WHERE status IN ('active', 'submitted');
    CREATE UNIQUE INDEX claims_member_slot ON claims (user_id, member_slot) WHERE status = 'active' AND member_slot IS NOT NULL;
    CREATE INDEX claims_user_idx ON claims (user_id, created_at, id);
    CREATE INDEX claims_overdue_idx ON claims (expires_at) WHERE status = 'active';
    CREATE INDEX claims_task_idx ON claims (task_id);

    CREATE TABLE submissions (
      id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      circle_id      uuid NOT NULL,
      claim_id       uuid NOT NULL REFERENCES claims(id) ON DELETE CASCADE,
      user_id        uuid NOT NULL REFERENCES users(id),
      revision       integer NOT NULL,
      content        text NOT NULL,
      links          text[] NOT NULL DEFAULT '{}',
      review_due_at  timestamptz NOT NULL,
      created_at     timestamptz NOT NULL DEFAULT now(),
      UNIQUE (claim_id, revision)
    );
    CREATE INDEX submissions_due_idx ON submissions (review_due_at);

    CREATE TABLE reviews (
      id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      circle_id      uuid NOT NULL,
      submission_id  uuid NOT NULL UNIQUE REFERENCES submissions(id) ON DELETE CASCADE,
      claim_id       uuid NOT NULL REFERENCES claims(id) ON DELETE CASCADE,
      reviewer_id    uuid REFERENCES users(id),
      decision       text NOT NULL CHECK (decision IN ('accept', 'reject', 'revise')),
      score          integer CHECK (score BETWEEN 0 AND 200),
      feedback       text NOT NULL DEFAULT '',
      automatic      boolean NOT NULL DEFAULT false,
      created_at     timestamptz NOT NULL DEFAULT now()
    );

    -- The contribution ledger: append-only. Corrections are new, compensating rows.
    CREATE TABLE contributions (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      circle_id    uuid NOT NULL,
      project_id   uuid REFERENCES projects(id),
      user_id      uuid NOT NULL REFERENCES users(id),
      source       text NOT NULL CHECK (source IN ('task', 'adjustment', 'checkin', 'recognition')),
      task_id      uuid REFERENCES tasks(id),
      claim_id     uuid UNIQUE REFERENCES claims(id),
      points       bigint NOT NULL,
      reason       text,
      created_by   uuid REFERENCES users(id),
      created_at   timestamptz NOT NULL DEFAULT now(),
      CHECK (source <> 'task' OR claim_id IS NOT NULL),
      CHECK (source <> 'adjustment' OR (reason IS NOT NULL AND points <> 0))
    );
    CREATE INDEX contributions_project_idx ON contributions (project_id, user_id);

    CREATE FUNCTION refuse_contribution_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'contributions are append-only: add a compensating row instead'
        USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE TRIGGER contributions_append_only BEFORE UPDATE OR DELETE ON contributions
      FOR EACH ROW EXECUTE FUNCTION refuse_contribution_change();
    CREATE TRIGGER contributions_no_truncate BEFORE TRUNCATE ON contributions
      FOR EACH STATEMENT EXECUTE FUNCTION refuse_contribution_change();
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP TABLE contributions, reviews, submissions, claims, task_dependencies, tasks, projects;
    DROP FUNCTION refuse_contribution_change();
  `.execute(db);
}
