import { sql, type Kysely } from 'kysely';

// Reads for managers: the circle's review queue, a project's claims, and revocable invites.
// - claims_review_queue_idx: the submitted claims of a circle in the order they were handed in.
//   A submitted claim's updated_at is the moment of its latest submission (the submission and the
//   status change share one transaction, and nothing else touches a claim while it is submitted),
//   so the queue is a walk along this index, however many claims the circle has in other states.
// - claims_project_idx: a project's claims, newest first, as GET /v1/projects/:id/claims pages them.
// - invites.revoked_at: a revoked invite stays on record (who made it, how often it was used) but
//   admits nobody.
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE INDEX claims_review_queue_idx ON claims (circle_id, updated_at, id) WHERE status = 'submitted';
    CREATE INDEX claims_project_idx ON claims (project_id, created_at, id);
    ALTER TABLE invites ADD COLUMN revoked_at timestamptz;
    CREATE INDEX invites_circle_idx ON invites (circle_id, created_at, code) WHERE revoked_at IS NULL;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP INDEX invites_circle_idx;
    ALTER TABLE invites DROP COLUMN revoked_at;
    DROP INDEX claims_project_idx;
    DROP INDEX claims_review_queue_idx;
  `.execute(db);
}
