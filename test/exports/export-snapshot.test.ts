import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { sql } from 'kysely';
import t from 'tap';
import { exportProjectContributions } from '../../src/contributions/contributions.service.js';
import { EXPORT_PAGE_SIZE, type KeysetPageMessage } from '../../src/infra/keyset-walk.js';
import { exportMemberLedger } from '../../src/ledger/ledger.service.js';
import { buildTestApp } from '../helper.js';
import { heldTransaction } from '../held-transaction.js';
import { circleWithRoles, createProject } from '../marketplace-helpers.js';
import { bookLedgerEntries, ledgerAccounts, seedContributions } from '../settlement-helpers.js';
import { parseCsv } from './parse-csv.js';

// The CSV exports walk their rows in keyset pages with no transaction held between them, so rows
// keep committing while a client downloads. A writer that took its id before the export began but
// commits after the first page holds an id the walk has not reached yet: the export must leave it
// out, as it leaves out everything committed after it began, rather than serve it or not depending
// on when it commits. The walk is driven page by page here, the writer committing in between.

/** Reads the first page of `pages`, runs `between`, then reads the rest; counts the page queries. */
async function walkAround<T>(pages: AsyncGenerator<T[]>, between: () => Promise<void>) {
  let queries = 0;
  const onPage = (message: unknown) => {
    queries = (message as KeysetPageMessage).page;
  };
  subscribe('circle-actions:keyset-page', onPage);
  try {
    const iterator = pages[Symbol.asyncIterator]();
    const first = await iterator.next();
    const pageOne = first.done ? [] : first.value;
    const queriesBefore = queries;
    await between();
    const rest: T[] = [];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest.push(...next.value);
    return { pageOne, rest, rows: [...pageOne, ...rest], queriesBefore, queries };
  } finally {
    unsubscribe('circle-actions:keyset-page', onPage);
  }
}

t.test('contributions.csv: a row committed after the first page is left out of that export', async (t) => {
  const { app, db } = await buildTestApp(t);
  const {
    owner,
    circle,
    members: [ann],
  } = await circleWithRoles(app, { members: 1 });
  const project = await createProject(app, owner, circle.id);
  await seedContributions(db, {
    circleId: circle.id,
    projectId: project.id,
    createdBy: owner.id,
    members: 5,
    rows: EXPORT_PAGE_SIZE + 500,
  });
  const insert = (reason: string) => sql<{ id: number }>`
    INSERT INTO contributions (circle_id, project_id, user_id, source, points, reason, created_by)
    VALUES (${circle.id}::uuid, ${project.id}::uuid, ${ann!.id}::uuid, 'adjustment', 7, ${reason}, ${owner.id}::uuid)
    RETURNING id`;
  // A slow writer takes its id after every seeded row, then one more row commits above it.
  const slow = await heldTransaction(db, async (trx) => Number((await insert('late writer').execute(trx)).rows[0]!.id));
  const above = Number((await insert('committed above it').execute(db)).rows[0]!.id);
  t.ok(slow.value < above, `the slow row's id ${slow.value} is below ${above}, which committed first`);

  const committed = async () =>
    (
      await sql<{ reason: string; points: number }>`
        SELECT reason, points FROM contributions WHERE project_id = ${project.id}::uuid ORDER BY id`.execute(db)
    ).rows.map((r) => `${r.points}:${r.reason}`);
  const atStart = await committed();
  t.equal(atStart.length, EXPORT_PAGE_SIZE + 501);

  const { pages } = await exportProjectContributions(app, ann!.id, project.id);
  const walk = await walkAround(pages, () => slow.commit());
  t.equal(walk.queriesBefore, 1, 'the writer committed after page one was read, before page two');
  t.equal(walk.pageOne.length, EXPORT_PAGE_SIZE);
  t.equal(walk.queries, 2, 'two page queries in all');
  t.same(
    walk.rows.map((r) => `${r.points}:${r.reason}`),
    atStart,
    'exactly the rows committed when the export began, in id order, each once',
  );
  t.notOk(
    walk.rows.some((r) => r.reason === 'late writer'),
    'the late row is left out of this export',
  );

  // A new export shows it in its place.
  const res = await app.inject({
    method: 'GET',
    url: `/v1/projects/${project.id}/contributions.csv`,
    headers: { authorization: `Bearer ${ann!.token}` },
  });
  t.equal(res.statusCode, 200);
  const [, ...rows] = parseCsv(res.body.slice(1));
  t.equal(rows.length, atStart.length + 1);
  t.same(
    rows.slice(-2).map((r) => r[6]),
    ['late writer', 'committed above it'],
  );
  t.same(
    rows.map((r) => `${r[4]}:${r[6]}`),
    await committed(),
  );
});

t.test('ledger.csv: an entry committed after the first page is left out of that export', async (t) => {
  const { app, db } = await buildTestApp(t);
  const {
    circle,
    members: [ann, ben],
  } = await circleWithRoles(app, { members: 2 });
  const accounts = await ledgerAccounts(db, circle.id, ann!.id);
  const book = (executor: Parameters<typeof bookLedgerEntries>[0], count: number, description: string) =>
    bookLedgerEntries(executor, { circleId: circle.id, accounts, count, description });
  await book(db, EXPORT_PAGE_SIZE + 300, 'seeded');
  await bookLedgerEntries(db, {
    circleId: circle.id,
    accounts: await ledgerAccounts(db, circle.id, ben!.id),
    count: 50,
    description: 'someone else',
  });
  const slow = await heldTransaction(db, (trx) => book(trx, 1, 'late writer'));
  const [above] = await book(db, 1, 'committed above it');
  const [late] = slow.value;
  t.ok(late! < above!, `the slow entry's id ${late} is below ${above}, which committed first`);

  const committed = async () =>
    (
      await sql<{ id: number }>`
        SELECT id FROM ledger_entries WHERE account_id = ${accounts.member}::uuid ORDER BY id`.execute(db)
    ).rows.map((r) => String(r.id));
  const atStart = await committed();
  t.equal(atStart.length, EXPORT_PAGE_SIZE + 301);

  const walk = await walkAround(await exportMemberLedger(app, ann!.id), () => slow.commit());
  t.equal(walk.queriesBefore, 1, 'the writer committed after page one was read, before page two');
  t.equal(walk.pageOne.length, EXPORT_PAGE_SIZE);
  t.same(
    walk.rows.map((e) => e.id),
    atStart,
    'exactly the entries committed when the export began, oldest first, each once',
  );
  t.notOk(walk.rows.map((e) => e.id).includes(String(late)), 'the late entry is left out of this export');

  const res = await app.inject({
    method: 'GET',
    url: '/v1/me/ledger.csv',
    headers: { authorization: `Bearer ${ann!.token}` },
  });
  t.equal(res.statusCode, 200);
  const [, ...rows] = parseCsv(res.body.slice(1));
  t.same(
    rows.map((r) => r[0]),
    await committed(),
    'a new export has every entry, the late one in its place',
  );
  t.same(
    rows.slice(-2).map((r) => r[7]),
    ['late writer', 'committed above it'],
  );
});
