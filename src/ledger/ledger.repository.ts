import { sql, type Transaction } from 'kysely';
import type { Database, LedgerAccountKind } from '../infra/database-schema.js';
import type { Db } from '../infra/postgres.js';
import { visibleIn } from '../infra/snapshots.js';

async function ensureAccount(
  trx: Transaction<Database>,
  circleId: string,
  kind: LedgerAccountKind,
  ownerId: string,
  unit: string,
): Promise<string> {
  await trx
    .insertInto('ledger_accounts')
    .values({ circle_id: circleId, kind, owner_id: ownerId, unit })
    .onConflict((oc) => oc.columns(['circle_id', 'kind', 'owner_id', 'unit']).doNothing())
    .execute();
  const row = await trx
    .selectFrom('ledger_accounts')
    .select('id')
    .where('circle_id', '=', circleId)
    .where('kind', '=', kind)
    .where('owner_id', '=', ownerId)
    .where('unit', '=', unit)
    .executeTakeFirstOrThrow();
  return row.id;
}

async function newTransaction(
  trx: Transaction<Database>,
  t: { circleId: string; kind: 'pool_funding' | 'settlement_payout'; settlementId: string; description: string },
) {
  const row = await trx
    .insertInto('ledger_transactions')
    .values({ circle_id: t.circleId, kind: t.kind, settlement_id: t.settlementId, description: t.description })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/**
 * Books a completed split in double entry, set-based from the payouts table:
 *   pool_funding:      owner funding -P, project pool +P
 *   settlement_payout: project pool -distributed, each payee's balance +amount
 * Each transaction sums to zero; what is undistributed stays in the project pool. Account balances
 * are then moved by the sum of their new entries, locking the accounts in id order so concurrent
 * settlements in one circle cannot deadlock. Two more rules keep it that way: new member accounts
 * are inserted in user id order (concurrent inserts of one key wait on each other), and the lock is
 * FOR NO KEY UPDATE, not FOR UPDATE: each settlement's entries already hold FOR KEY SHARE locks on
 * the shared accounts (their foreign keys), which FOR UPDATE would wait on, both ways round.
 */
export async function bookSettlement(
  trx: Transaction<Database>,
  s: {
    id: string;
    circleId: string;
    projectId: string;
    unit: string;
    pool: bigint;
    distributed: bigint;
  },
): Promise<void> {
  const txIds: string[] = [];
  const pool = await ensureAccount(trx, s.circleId, 'project_pool', s.projectId, s.unit);
  if (s.pool > 0n) {
    const funding = await ensureAccount(trx, s.circleId, 'owner_funding', s.circleId, s.unit);
    const tx = await newTransaction(trx, {
      circleId: s.circleId,
      kind: 'pool_funding',
      settlementId: s.id,
      description: 'Reward pool funded for settlement',
    });
    await trx
      .insertInto('ledger_entries')
      .values([
        { transaction_id: tx, account_id: funding, amount: Number(-s.pool) },
        { transaction_id: tx, account_id: pool, amount: Number(s.pool) },
      ])
      .execute();
    txIds.push(tx);
  }
  if (s.distributed > 0n) {
    const tx = await newTransaction(trx, {
      circleId: s.circleId,
      kind: 'settlement_payout',
      settlementId: s.id,
      description: 'Reward pool paid out by contribution',
    });
    await sql`
      INSERT INTO ledger_accounts (circle_id, kind, owner_id, unit)
      SELECT circle_id, 'member_balance', user_id, ${s.unit} FROM payouts WHERE settlement_id = ${s.id}::uuid AND amount > 0
      ORDER BY user_id
      ON CONFLICT (circle_id, kind, owner_id, unit) DO NOTHING`.execute(trx);
    await sql`
      INSERT INTO ledger_entries (transaction_id, account_id, amount)
      SELECT ${tx}::uuid, a.id, p.amount
      FROM payouts p
      JOIN ledger_accounts a ON a.circle_id = p.circle_id AND a.kind = 'member_balance' AND a.owner_id = p.user_id AND a.unit = ${s.unit}
      WHERE p.settlement_id = ${s.id}::uuid AND p.amount > 0
      ORDER BY p.rank`.execute(trx);
    await trx
      .insertInto('ledger_entries')
      .values({ transaction_id: tx, account_id: pool, amount: Number(-s.distributed) })
      .execute();
    txIds.push(tx);
  }
  if (txIds.length === 0) return;
  await sql`
    WITH sums AS (
      SELECT account_id, sum(amount)::bigint AS delta FROM ledger_entries WHERE transaction_id = ANY(${txIds}::uuid[]) GROUP BY account_id
    ), locked AS (
      SELECT a.id FROM ledger_accounts a JOIN sums ON sums.account_id = a.id ORDER BY a.id FOR NO KEY UPDATE OF a
    )
    UPDATE ledger_accounts a SET balance = a.balance + sums.delta
    FROM sums, locked WHERE a.id = sums.account_id AND locked.id = a.id`.execute(trx);
}

export async function memberBalances(db: Db, userId: string) {
  return db
    .selectFrom('ledger_accounts')
    .select(['circle_id', 'unit', 'balance'])
    .where('owner_id', '=', userId)
    .where('kind', '=', 'member_balance')
    .orderBy('circle_id')
    .orderBy('unit')
    .execute();
}

/** The entries on a member's balances, with their transaction. */
function memberEntries(db: Db, userId: string) {
  return db
    .selectFrom('ledger_entries')
    .innerJoin('ledger_accounts', 'ledger_accounts.id', 'ledger_entries.account_id')
    .innerJoin('ledger_transactions', 'ledger_transactions.id', 'ledger_entries.transaction_id')
    .select([
      'ledger_entries.id',
      'ledger_accounts.circle_id',
      'ledger_accounts.unit',
      'ledger_entries.amount',
      'ledger_entries.transaction_id',
      'ledger_transactions.kind',
      'ledger_transactions.settlement_id',
      'ledger_transactions.description',
      'ledger_entries.created_at',
    ])
    .where('ledger_accounts.owner_id', '=', userId)
    .where('ledger_accounts.kind', '=', 'member_balance');
}

/**
 * A page of a member's entries, newest first, below `beforeId`, as `snapshot` saw them (see
 * src/infra/snapshots.ts): one row more than `limit`, to tell whether another page follows.
 */
export async function memberLedgerEntries(
  db: Db,
  userId: string,
  page: { snapshot: string; beforeId: number | null; limit: number },
) {
  let q = memberEntries(db, userId).where(visibleIn('ledger_entries', page.snapshot));
  if (page.beforeId !== null) q = q.where('ledger_entries.id', '<', page.beforeId);
  return q
    .orderBy('ledger_entries.id', 'desc')
    .limit(page.limit + 1)
    .execute();
}

/** One page of a member's entries for export, oldest first: those after `after` visible in `snapshot`. */
export async function memberLedgerPage(
  db: Db,
  userId: string,
  range: { after: number | null; snapshot: string },
  limit: number,
) {
  return memberEntries(db, userId)
    .where('ledger_entries.id', '>', range.after ?? 0)
    .where(visibleIn('ledger_entries', range.snapshot))
    .orderBy('ledger_entries.id')
    .limit(limit)
    .execute();
}
