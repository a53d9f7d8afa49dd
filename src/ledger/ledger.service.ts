import type { AppContext } from '../context.js';
import { decodeCursor, encodeCursor } from '../infra/cursors.js';
import { EXPORT_PAGE_SIZE, walkKeyset } from '../infra/keyset-walk.js';
import { currentSnapshot, parseSnapshot } from '../infra/snapshots.js';
import * as repo from './ledger.repository.js';

// A member's view of the money ledger: balances, and the entries on their balances, listed newest
// first or exported oldest first. Both walks of the entries pin the database snapshot of their
// first page (src/infra/snapshots.ts): an entry booked by a transaction still open when the walk
// began holds an id the walk may already have passed, or not yet, so it is left out of that walk
// whatever its timing, and a new walk shows it.

type EntryRow = Awaited<ReturnType<typeof repo.memberLedgerPage>>[number];

const toEntryView = (r: EntryRow) => ({
  id: String(r.id),
  circleId: r.circle_id,
  unit: r.unit,
  amount: r.amount,
  transactionId: r.transaction_id,
  kind: r.kind,
  settlementId: r.settlement_id,
  description: r.description,
  createdAt: r.created_at,
});

export type EntryView = ReturnType<typeof toEntryView>;

/** The member's balances, one per circle and unit (never more than a page: no cursor). */
export async function listMemberBalances(ctx: AppContext, userId: string) {
  const rows = await repo.memberBalances(ctx.db, userId);
  return { items: rows.map((r) => ({ circleId: r.circle_id, unit: r.unit, amount: r.balance })), nextCursor: null };
}

/**
 * The entries on the member's balances, newest first. The cursor is [snapshot of the first page,
 * id of the last entry served]: the walk serves exactly the entries committed when it began, each
 * once, whatever commits meanwhile.
 */
export async function listMemberLedger(ctx: AppContext, userId: string, request: { limit?: number; cursor?: string }) {
  const limit = request.limit ?? 50;
  const key = decodeCursor(request.cursor, ['string', 'number']) as [string, number] | null;
  const snapshot = key ? parseSnapshot(key[0]) : await currentSnapshot(ctx.db);
  const rows = await repo.memberLedgerEntries(ctx.db, userId, { snapshot, beforeId: key ? key[1] : null, limit });
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items: items.map(toEntryView),
    nextCursor: rows.length > limit && last ? encodeCursor([snapshot, last.id]) : null,
  };
}

/**
 * The entries on the member's balances, oldest first, for a CSV export, read page by page as the
 * client takes them: exactly the entries committed when the export began, each once.
 */
export async function exportMemberLedger(ctx: AppContext, userId: string): Promise<AsyncGenerator<EntryView[]>> {
  const snapshot = await currentSnapshot(ctx.db);
  const pages = walkKeyset(
    'my-ledger',
    EXPORT_PAGE_SIZE,
    (after: number | null, limit) => repo.memberLedgerPage(ctx.db, userId, { after, snapshot }, limit),
    (row) => Number(row.id),
  );
  async function* entries() {
    for await (const page of pages) yield page.map(toEntryView);
  }
  return entries();
}
