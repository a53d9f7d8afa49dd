import { sql, type Kysely } from 'kysely';

// Sessions are purged (the maintenance task `purge-ended-sessions`): tokens that expired or were
// revoked go, so the table holds what can still be presented to some effect. The purge finds them
// by expiry and revocation; a password change revokes a user's tokens by user, which had no index
// and read the whole table.
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE INDEX refresh_tokens_user_live_idx ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
    CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
    CREATE INDEX refresh_tokens_revoked_idx ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP INDEX refresh_tokens_user_live_idx;
    DROP INDEX refresh_tokens_expires_idx;
    DROP INDEX refresh_tokens_revoked_idx;
  `.execute(db);
}
