import type { Test } from 'tap';
import type { FastifyInstance } from 'fastify';
import { sql, type RawBuilder } from 'kysely';
import type { Executor } from '../src/infra/db.js';
import type { Db } from '../src/infra/postgres.js';
import { checkInvariants, INVARIANT_NAMES } from '../src/audit/invariants.js';
import { splitPool, splitResultHash, type SplitResult } from '../src/settlements/split.js';
import { call, type Reply, type TestUser } from './helper.js';
import { waitFor } from './marketplace-helpers.js';

// Building blocks for the settlement tests: requesting over HTTP, waiting for the workers, and
// recomputing what a settlement must have paid straight from the contribution rows.

export const requestSettlement = (
  app: FastifyInstance,
  user: TestUser,
  projectId: string,
  body: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) => call(app, 'POST', `/v1/projects/${projectId}/settlements`, { token: user.token, body, headers });

/** Requests a settlement and returns its id; throws unless 202. */
export async function requestSettlementId(
  app: FastifyInstance,
  user: TestUser,
  projectId: string,
  body: Record<string, unknown> = {},
): Promise<string> {
  const res = await requestSettlement(app, user, projectId, body);
  if (res.status !== 202) throw new Error(`settlement request failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

export async function adjust(
  app: FastifyInstance,
  owner: TestUser,
  projectId: string,
  userId: string,
  points: number,
  reason = 'Helped out',
): Promise<Reply> {
  const res = await call(app, 'POST', `/v1/projects/${projectId}/adjustments`, {
    token: owner.token,
    body: { userId, points, reason },
  });
  if (res.status !== 201) throw new Error(`adjustment failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}

export async function settlementStatus(db: Db, settlementId: string): Promise<string | undefined> {
  const row = await db.selectFrom('settlements').select('status').where('id', '=', settlementId).executeTakeFirst();
  return row?.status;
}

/** Waits until the settlement leaves pending (completed or failed) and returns its status. */
export async function waitForSettled(db: Db, settlementId: string, timeoutMs = 30_000): Promise<string | undefined> {
  return waitFor(
    async () => {
      const status = await settlementStatus(db, settlementId);
      return status === 'completed' || status === 'failed' ? status : undefined;
    },
    timeoutMs,
    50,
  );
}

/**
 * What the settlement must pay, recomputed independently of the worker: each member's points
 * and first contribution (microseconds) aggregated from the rows up to the frozen cutoff, split
 * with the settlement's own policy.
 */
export async function recomputeSplit(db: Db, settlementId: string): Promise<SplitResult> {
  const s = await db.selectFrom('settlements').selectAll().where('id', '=', settlementId).executeTakeFirstOrThrow();
  const rows = await sql<{ user_id: string; points: string; first_at: string }>`
    SELECT user_id, sum(points)::text AS points, (extract(epoch from min(created_at)) * 1000000)::bigint::text AS first_at
    FROM contributions WHERE project_id = ${s.project_id} AND id <= ${s.cutoff_id} GROUP BY user_id`.execute(db);
  return splitPool({
    pool: BigInt(s.pool_amount),
    contributors: rows.rows.map((r) => ({
      userId: r.user_id,
      points: BigInt(r.points),
      firstContributionAt: Number(r.first_at),
    })),
    policy: {
      ...(s.min_points !== null && { minPoints: BigInt(s.min_points) }),
      ...(s.cap_basis_points !== null && { capBasisPoints: s.cap_basis_points }),
    },
  });
}

export const recomputeHash = async (db: Db, settlementId: string) =>
  splitResultHash(await recomputeSplit(db, settlementId));

/** Rows a settlement left behind: payouts, ledger transactions and entries, completion events. */
export async function settlementFootprint(db: Db, settlementId: string) {
  const one = async (query: RawBuilder<unknown>) => Number(((await query.execute(db)).rows[0] as { n: string }).n);
  return {
    payouts: await one(sql`SELECT count(*) AS n FROM payouts WHERE settlement_id = ${settlementId}`),
    payees: await one(sql`SELECT count(DISTINCT user_id) AS n FROM payouts WHERE settlement_id = ${settlementId}`),
    paid: await one(sql`SELECT coalesce(sum(amount), 0) AS n FROM payouts WHERE settlement_id = ${settlementId}`),
    ledgerTransactions: await one(
      sql`SELECT count(*) AS n FROM ledger_transactions WHERE settlement_id = ${settlementId}`,
    ),
    ledgerEntries: await one(
      sql`SELECT count(*) AS n FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id WHERE t.settlement_id = ${settlementId}`,
    ),
    completedEvents: await one(
      sql`SELECT count(*) AS n FROM events WHERE subject_id = ${settlementId} AND type = 'settlement.completed'`,
    ),
  };
}

/** Every invariant holds (checkInvariants reports no violation), with the broken ones named. */
export async function assertInvariants(t: Test, db: Db): Promise<void> {
  const results = await checkInvariants(db);
  const broken = results.filter((r) => r.violations > 0);
  t.same(
    broken.map((r) => ({ name: r.name, samples: r.samples })),
    [],
    'every invariant holds',
  );
  t.same(
    results.map((r) => r.name),
    INVARIANT_NAMES,
    `all ${INVARIANT_NAMES.length} invariants were checked`,
  );
}

/**
 * Seeds `members` users into a circle and `rows` adjustment rows for them in one project, set-based
 * (generate_series), with varied points and first-contribution times. The fingerprint trigger
 * fills each row's fingerprint as the API would.
 */
export async function seedContributions(
  db: Db,
  s: { circleId: string; projectId: string; createdBy: string; members: number; rows: number; handlePrefix?: string },
): Promise<void> {
  const prefix = s.handlePrefix ?? 'seed';
  await sql`
    INSERT INTO users (handle, password_hash, display_name)
    SELECT ${prefix} || '_' || g, 'not-a-password-hash', 'Seeded member ' || g FROM generate_series(1, ${s.members}::int) g`.execute(
    db,
  );
  await sql`
    INSERT INTO memberships (circle_id, user_id, role)
    SELECT ${s.circleId}::uuid, id, 'member' FROM users WHERE handle LIKE ${`${prefix}\\_%`}`.execute(db);
  await sql`
    INSERT INTO contributions (circle_id, project_id, user_id, source, points, reason, created_by, created_at)
    SELECT ${s.circleId}::uuid, ${s.projectId}::uuid, m.id, 'adjustment', 1 + (g::bigint * 7919) % 13, 'Seeded work', ${s.createdBy}::uuid,
           now() - make_interval(secs => (${s.rows}::int - g) * 0.001)
    FROM generate_series(0, ${s.rows}::int - 1) g
    JOIN (SELECT id, row_number() OVER (ORDER BY handle) - 1 AS n FROM users WHERE handle LIKE ${`${prefix}\\_%`}) m ON m.n = g % ${s.members}::int`.execute(
    db,
  );
  await sql`ANALYZE contributions`.execute(db);
}

/** A member's balance account and the circle's funding account in `unit`, created if missing. */
export async function ledgerAccounts(
  db: Db,
  circleId: string,
  userId: string,
  unit = 'points',
): Promise<{ member: string; funding: string }> {
  const rows = await sql<{ id: string; kind: string }>`
    INSERT INTO ledger_accounts (circle_id, kind, owner_id, unit)
    VALUES (${circleId}::uuid, 'member_balance', ${userId}::uuid, ${unit}),
           (${circleId}::uuid, 'owner_funding', ${circleId}::uuid, ${unit})
    ON CONFLICT (circle_id, kind, owner_id, unit) DO UPDATE SET unit = EXCLUDED.unit
    RETURNING id, kind`.execute(db);
  const id = (kind: string) => rows.rows.find((r) => r.kind === kind)!.id;
  return { member: id('member_balance'), funding: id('owner_funding') };
}

/**
 * Books `count` payouts of 1..count units to the member's account in one ledger transaction (each
 * its own entry, in id order) against the funding account, set-based, and returns the member
 * entries' ids. Balances are not moved, so writers holding their transaction open never wait on
 * each other's account locks: tests using it read entries only.
 */
export async function bookLedgerEntries(
  db: Executor,
  s: { circleId: string; accounts: { member: string; funding: string }; count: number; description: string },
): Promise<number[]> {
  const tx = await sql<{ id: string }>`
    INSERT INTO ledger_transactions (circle_id, kind, description)
    VALUES (${s.circleId}::uuid, 'settlement_payout', ${s.description}) RETURNING id`.execute(db);
  const transactionId = tx.rows[0]!.id;
  const entries = await sql<{ id: number }>`
    INSERT INTO ledger_entries (transaction_id, account_id, amount)
    SELECT ${transactionId}::uuid, ${s.accounts.member}::uuid, g FROM generate_series(1, ${s.count}::int) g ORDER BY g
    RETURNING id`.execute(db);
  await sql`
    INSERT INTO ledger_entries (transaction_id, account_id, amount)
    VALUES (${transactionId}::uuid, ${s.accounts.funding}::uuid, ${-(s.count * (s.count + 1)) / 2})`.execute(db);
  return entries.rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}
