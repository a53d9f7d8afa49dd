import { sql, type Kysely } from 'kysely';

// Idempotency keys learn whether their request's change committed.
// - holder: a token for the request that took the key. Completing, releasing and marking a key
//   name it, so a request that outlived its key (another retry took it over as abandoned) can no
//   longer write to it, and its change rolls back instead of applying twice.
// - applied_at: set in the transaction of the request's change (with its outbox events), so a key
//   whose process died after that commit and before storing the response is never taken over: a
//   retry would apply the change a second time.
// Existing keys get no holder; they are at most a day old and are completed or expire as before.
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE idempotency_keys ADD COLUMN holder uuid;
    ALTER TABLE idempotency_keys ADD COLUMN applied_at timestamptz;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE idempotency_keys DROP COLUMN holder, DROP COLUMN applied_at`.execute(db);
}
