import { sql, type Kysely } from 'kysely';

// ledger_entries.xact_id: the writing transaction, as events.xact_id and contributions.xact_id
// (0008). A member's ledger listing and its CSV export pin the snapshot of their first page and
// count only the entries visible in it (pg_visible_in_snapshot), so an entry whose transaction
// commits a lower id mid-walk is left out of that walk, consistently, instead of being served or
// skipped by timing. Set by default, so every writer fills it without knowing. Added without a
// default first and given one afterwards: existing rows keep null (visible to every snapshot) and
// the table is not rewritten.
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE ledger_entries ADD COLUMN xact_id xid8;
    ALTER TABLE ledger_entries ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id();
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE ledger_entries DROP COLUMN xact_id`.execute(db);
}
