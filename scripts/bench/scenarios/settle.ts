import pg from 'pg';
import { api } from '../lib/service.js';
import { peakRssMb, rssMb } from '../lib/processes.js';
import { fmt, progress, step, timed } from '../lib/report.js';
import { createCircle, createProject, registerOwner, seedMembers } from '../lib/seed.js';
import { ms, type BenchContext } from './context.js';

const POOL = 1_000_000_007;

async function seedContributions(
  ctx: BenchContext,
  tag: string,
  circleId: string,
  projectId: string,
  ownerId: string,
  members: string[],
  rows: number,
) {
  const table = `bench_settle_members${tag}`;
  await ctx.pool.query(`CREATE TABLE ${table} (i int PRIMARY KEY, id uuid NOT NULL)`);
  await ctx.pool.query(`INSERT INTO ${table} SELECT i, id FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, i)`, [
    members,
  ]);
  const chunk = 100_000;
  for (let start = 0; start < rows; start += chunk) {
    const end = Math.min(rows, start + chunk) - 1;
    // Adjustments (reason, non-zero points) spread over the members in time order; one in 53 is a
    // negative correction, as the append-only ledger records them.
    await ctx.pool.query(
      `
      INSERT INTO contributions (circle_id, project_id, user_id, source, points, reason, created_by, created_at)
      SELECT $1::uuid, $2::uuid, m.id, 'adjustment', CASE WHEN g % 53 = 0 THEN -3 ELSE 1 + (g::bigint * 7919) % 97 END, 'bench seed', $3::uuid,
             now() - interval '2 days' + g * interval '1 millisecond'
      FROM generate_series($4::int, $5::int) g JOIN ${table} m ON m.i = 1 + g % $6::int
      ORDER BY g`,
      [circleId, projectId, ownerId, start, end, members.length],
    );
    progress(`contributions: ${fmt(end + 1)}/${fmt(rows)}`);
  }
  progress(`contributions: ${fmt(rows)} seeded`, true);
  await ctx.pool.query('VACUUM ANALYZE contributions, users, memberships');
}

async function createScratchTables(pool: pg.Pool) {
  // Created once per run: a second settlement (on the other queue backend) books into them too.
  const { rows } = await pool.query<{ found: string | null }>("SELECT to_regclass('bench_payouts')::text AS found");
  if (rows[0]!.found) return;
  await pool.query(`
    CREATE TABLE bench_payouts (LIKE payouts INCLUDING ALL);
    ALTER TABLE bench_payouts ADD FOREIGN KEY (settlement_id) REFERENCES settlements(id), ADD FOREIGN KEY (user_id) REFERENCES users(id);
    CREATE TABLE bench_ledger_accounts (LIKE ledger_accounts INCLUDING ALL);
    CREATE TABLE bench_ledger_transactions (LIKE ledger_transactions INCLUDING ALL);
    ALTER TABLE bench_ledger_transactions ADD FOREIGN KEY (settlement_id) REFERENCES settlements(id);
    CREATE TABLE bench_ledger_entries (LIKE ledger_entries INCLUDING ALL);
    ALTER TABLE bench_ledger_entries ADD FOREIGN KEY (transaction_id) REFERENCES bench_ledger_transactions(id),
      ADD FOREIGN KEY (account_id) REFERENCES bench_ledger_accounts(id);
    CREATE TABLE bench_events (LIKE events INCLUDING ALL);`);
}

/**
 * The whole settlement as plain set-based SQL in one transaction, into scratch copies of the
 * payout and ledger tables: aggregate, exact floor shares in numeric, the remainder units by
 * largest remainder (ties: earliest first contribution, then user id), payouts in output order,
 * double-entry booking, balances, and the result hash over the canonical lines.
 */
async function bareSettlement(client: pg.Client, settlementId: string) {
  await client.query('BEGIN');
  const {
    rows: [s],
  } = await client.query<{
    circle_id: string;
    project_id: string;
    pool_amount: string;
    unit: string;
    cutoff_id: string;
  }>(
    'SELECT circle_id, project_id, pool_amount::text, unit, cutoff_id::text FROM settlements WHERE id = $1 FOR UPDATE',
    [settlementId],
  );
  const { circle_id: circle, project_id: project, pool_amount: pool, unit, cutoff_id: cutoff } = s!;
  await client.query(
    `
    WITH totals AS (
      SELECT user_id, sum(points)::numeric AS w, min(created_at) AS first_at
      FROM contributions WHERE project_id = $2 AND id <= $3 GROUP BY user_id
    ), payees AS (
      SELECT * FROM totals WHERE w > 0
    ), total AS (
      SELECT sum(w) AS w_total FROM payees
    ), shares AS (
      SELECT p.user_id, p.w, p.first_at, t.w_total, div($4::numeric * p.w, t.w_total) AS base, mod($4::numeric * p.w, t.w_total) AS rem
      FROM payees p, total t
    ), units AS (
      SELECT $4::numeric - coalesce(sum(base), 0) AS r FROM shares
    ), ranked AS (
      SELECT s.*, row_number() OVER (ORDER BY rem DESC, first_at, user_id) <= u.r AS rounded_up FROM shares s, units u
    ), final AS (
      SELECT *, base + rounded_up::int AS amount, gcd(w, w_total) AS g FROM ranked
    )
    INSERT INTO bench_payouts (settlement_id, circle_id, user_id, rank, points, amount, share_numerator, share_denominator, rounded_up, capped)
    SELECT $1, $5, user_id, row_number() OVER (ORDER BY amount DESC, first_at, user_id), w, amount, div(w, g), div(w_total, g), rounded_up, false
    FROM final`,
    [settlementId, project, cutoff, pool, circle],
  );
  const {
    rows: [d],
  } = await client.query<{ distributed: string }>(
    'SELECT coalesce(sum(amount), 0)::text AS distributed FROM bench_payouts WHERE settlement_id = $1',
    [settlementId],
  );
  const distributed = d!.distributed;
  await client.query(
    `
    INSERT INTO bench_ledger_accounts (circle_id, kind, owner_id, unit) VALUES ($1, 'project_pool', $2, $3), ($1, 'owner_funding', $1, $3)
    ON CONFLICT (circle_id, kind, owner_id, unit) DO NOTHING`,
    [circle, project, unit],
  );
  await client.query(
    `
    WITH tx AS (
      INSERT INTO bench_ledger_transactions (circle_id, kind, settlement_id, description)
      VALUES ($1, 'pool_funding', $4, 'Reward pool funded for settlement') RETURNING id
    )
    INSERT INTO bench_ledger_entries (transaction_id, account_id, amount)
    SELECT tx.id, a.id, CASE a.kind WHEN 'owner_funding' THEN -$5::bigint ELSE $5::bigint END
    FROM tx, bench_ledger_accounts a
    WHERE a.circle_id = $1 AND a.unit = $3 AND ((a.kind = 'owner_funding' AND a.owner_id = $1) OR (a.kind = 'project_pool' AND a.owner_id = $2))
    ORDER BY a.kind = 'project_pool'`,
    [circle, project, unit, settlementId, pool],
  );
  await client.query(
    `
    INSERT INTO bench_ledger_accounts (circle_id, kind, owner_id, unit)
    SELECT circle_id, 'member_balance', user_id, $2 FROM bench_payouts WHERE settlement_id = $1 AND amount > 0
    ON CONFLICT (circle_id, kind, owner_id, unit) DO NOTHING`,
    [settlementId, unit],
  );
  await client.query(
    `
    WITH tx AS (
      INSERT INTO bench_ledger_transactions (circle_id, kind, settlement_id, description)
      VALUES ($1, 'settlement_payout', $4, 'Reward pool paid out by contribution') RETURNING id
    ), payees AS (
      SELECT tx.id AS tx, a.id AS account, p.amount, p.rank
      FROM tx, bench_payouts p
      JOIN bench_ledger_accounts a ON a.circle_id = p.circle_id AND a.kind = 'member_balance' AND a.owner_id = p.user_id AND a.unit = $3
      WHERE p.settlement_id = $4 AND p.amount > 0
    )
    INSERT INTO bench_ledger_entries (transaction_id, account_id, amount)
    SELECT tx, account, amount FROM (
      SELECT tx, account, amount, rank FROM payees
      UNION ALL
      SELECT tx.id, a.id, -$5::bigint, 2147483647 FROM tx, bench_ledger_accounts a
      WHERE a.circle_id = $1 AND a.kind = 'project_pool' AND a.owner_id = $2 AND a.unit = $3
    ) x ORDER BY rank`,
    [circle, project, unit, settlementId, distributed],
  );
  await client.query(
    `
    UPDATE bench_ledger_accounts a SET balance = a.balance + s.delta
    FROM (SELECT e.account_id, sum(e.amount)::bigint AS delta
          FROM bench_ledger_entries e JOIN bench_ledger_transactions t ON t.id = e.transaction_id
          WHERE t.settlement_id = $1 GROUP BY e.account_id) s
    WHERE a.id = s.account_id`,
    [settlementId],
  );
  const {
    rows: [h],
  } = await client.query<{ hash: string }>(
    `
    SELECT encode(sha256(convert_to(
      E'circle-actions/settlement-split/v1\\n' || 'pool=' || $2 || E'\\nminPoints=-\\ncapBasisPoints=-\\n'
      || 'undistributed=' || CASE WHEN count(*) = 0 THEN $2::bigint ELSE 0 END || E'\\n'
      || coalesce(string_agg(user_id || ',' || points || ',' || amount || ',' || share_numerator || '/' || share_denominator || ',' || rounded_up || E'\\n', '' ORDER BY rank), ''),
      'UTF8')), 'hex') AS hash
    FROM bench_payouts WHERE settlement_id = $1`,
    [settlementId, pool],
  );
  // Each member paid gets a payout notice in their inbox, as the service writes them.
  await client.query(
    `
    INSERT INTO bench_events (circle_id, type, subject_id, recipient_id, recipient_only, payload)
    SELECT circle_id, 'payout.credited', user_id, user_id, true,
           jsonb_build_object('settlementId', settlement_id, 'projectId', $2::uuid, 'amount', amount, 'unit', $3::text, 'points', points)
    FROM bench_payouts WHERE settlement_id = $1 AND amount > 0
    ORDER BY rank`,
    [settlementId, project, unit],
  );
  await client.query('COMMIT');
  return { hash: h!.hash, distributed };
}

/**
 * Settling a big project: POST /settlements until the worker has completed it (one transaction:
 * aggregate in SQL, split exactly in BigInt, write payouts and ledger), and the worker's peak
 * memory, against the same settlement as bare set-based SQL.
 */
export const settle = (ctx: BenchContext) => settleOn(ctx, { name: 'settle', tag: '' });

/**
 * The same measurement on the service as it currently runs (the no_redis scenario: queues in
 * Postgres), on a project of its own, rows named `name` and `${name}_worker_rss`; `tag` keeps its
 * seeded handles and scratch table apart from the first settlement's.
 */
export async function settleOn(ctx: BenchContext, variant: { name: string; tag: string }): Promise<void> {
  const s = ctx.opts.sizes;
  const { url } = ctx.service;
  const { name, tag } = variant;
  const seeded = await timed(
    `${name}: seeding ${fmt(s.settleRows)} contributions over ${fmt(s.settleMembers)} members`,
    async () => {
      const owner = await registerOwner(url, `bench_settler${tag}`);
      const circleId = await createCircle(url, owner, 'Bench settlement circle');
      const projectId = await createProject(url, owner, circleId, 'Bench settlement', POOL);
      const members = await seedMembers(ctx.pool, circleId, `bench_s${tag}`, s.settleMembers);
      await seedContributions(ctx, tag, circleId, projectId, owner.id, members, s.settleRows);
      await createScratchTables(ctx.pool);
      return { owner, projectId };
    },
  );
  // Both sides read the contributions from a warm cache.
  await ctx.pool.query('SELECT count(*), sum(points) FROM contributions WHERE project_id = $1', [seeded.projectId]);

  const worker = ctx.service.worker.pid;
  const rssBefore = rssMb(worker);
  step(`${name}: POST /settlements, then wait for the worker (RSS now ${rssBefore.toFixed(0)} MB)`);
  const t0 = performance.now();
  const accepted = await api<{ id: string }>(
    url,
    'POST',
    `/v1/projects/${seeded.projectId}/settlements`,
    seeded.owner.token,
    {},
  );
  let status = 'pending';
  let sampledPeak = rssBefore;
  let failure: string | null = null;
  while (status === 'pending' || status === 'running') {
    await new Promise((r) => setTimeout(r, 20));
    sampledPeak = Math.max(sampledPeak, rssMb(worker));
    const {
      rows: [row],
    } = await ctx.pool.query<{ status: string; failure_reason: string | null }>(
      'SELECT status, failure_reason FROM settlements WHERE id = $1',
      [accepted.id],
    );
    status = row!.status;
    failure = row!.failure_reason;
    progress(
      `${name}: ${status}, ${((performance.now() - t0) / 1000).toFixed(1)} s, worker RSS ${rssMb(worker).toFixed(0)} MB`,
    );
  }
  const httpMs = performance.now() - t0;
  progress(`${name}: ${status} in ${ms(httpMs)}`, true);
  if (status !== 'completed') throw new Error(`settlement ${status}: ${failure}`);
  const peak = Math.max(sampledPeak, peakRssMb(worker));

  step(`${name}: the same settlement as bare SQL in one transaction`);
  const client = new pg.Client({ connectionString: ctx.databaseUrl });
  await client.connect();
  let bare: { hash: string; distributed: string };
  let sqlMs: number;
  try {
    const t1 = performance.now();
    bare = await bareSettlement(client, accepted.id);
    sqlMs = performance.now() - t1;
  } finally {
    await client.end();
  }

  // Same payouts, same hash, same ledger totals: the two did the same work.
  const {
    rows: [cmp],
  } = await ctx.pool.query<{ diff: number; payees: number; hash: string; booked: string; bare_booked: string }>(
    `
    SELECT (SELECT count(*)::int FROM (
              (SELECT user_id, rank, points, amount, share_numerator, share_denominator, rounded_up FROM payouts WHERE settlement_id = $1
               EXCEPT SELECT user_id, rank, points, amount, share_numerator, share_denominator, rounded_up FROM bench_payouts WHERE settlement_id = $1)
              UNION ALL
              (SELECT user_id, rank, points, amount, share_numerator, share_denominator, rounded_up FROM bench_payouts WHERE settlement_id = $1
               EXCEPT SELECT user_id, rank, points, amount, share_numerator, share_denominator, rounded_up FROM payouts WHERE settlement_id = $1)) x) AS diff,
           (SELECT payee_count FROM settlements WHERE id = $1) AS payees,
           (SELECT result_hash FROM settlements WHERE id = $1) AS hash,
           (SELECT coalesce(sum(e.amount), 0)::text FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id WHERE t.settlement_id = $1 AND e.amount > 0) AS booked,
           (SELECT coalesce(sum(e.amount), 0)::text FROM bench_ledger_entries e JOIN bench_ledger_transactions t ON t.id = e.transaction_id WHERE t.settlement_id = $1 AND e.amount > 0) AS bare_booked`,
    [accepted.id],
  );
  const same = cmp!.diff === 0 && cmp!.hash === bare.hash && cmp!.booked === cmp!.bare_booked;
  if (!same)
    ctx.failures.push(
      `${name}: bare SQL and the service disagree (${cmp!.diff} differing payout rows, hash ${cmp!.hash} vs ${bare.hash}, booked ${cmp!.booked} vs ${cmp!.bare_booked})`,
    );
  step(
    `${name}: ${fmt(cmp!.payees)} payees; payouts, result hash and ledger ${same ? 'identical' : 'DIFFER'} between the service and bare SQL`,
  );

  ctx.results.push({
    name,
    value: httpMs,
    unit: 'ms',
    limit: sqlMs,
    ratio: httpMs / sqlMs,
    target: '<= 2 (times)',
    met: httpMs / sqlMs <= 2,
    notes:
      `${fmt(s.settleRows)} contributions over ${fmt(s.settleMembers)} members, ${fmt(cmp!.payees)} payees: POST to completed ${ms(httpMs)} vs bare SQL ${ms(sqlMs)}; ` +
      `results identical: ${same ? 'yes' : 'NO'}`,
  });
  ctx.results.push({
    name: `${name}_worker_rss`,
    value: peak,
    unit: 'MB',
    limit: 300,
    ratio: peak / 300,
    target: '<= 1 (of 300 MB)',
    met: peak <= 300,
    notes: `worker peak RSS (VmHWM, whole process life) ${peak.toFixed(0)} MB; ${rssBefore.toFixed(0)} MB before the settlement`,
  });
}
