import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import t from 'tap';
import { encodeCursor } from '../../src/infra/cursors.js';
import { buildTestApp, call, isProblem, type Reply, type TestUser } from '../helper.js';
import { heldTransaction } from '../held-transaction.js';
import { circleWithRoles } from '../marketplace-helpers.js';
import { bookLedgerEntries, ledgerAccounts } from '../settlement-helpers.js';

// GET /v1/me/ledger pages newest first by id, and entries keep being booked while a member pages.
// A settlement still open when the walk begins holds ids below the first page; committing before
// page two, its entries would land in the walk or not depending on timing. The walk is pinned to
// the snapshot of its first page instead: it serves exactly the entries committed when it began.

type Entry = { id: string; description: string };

async function walkLedger(
  app: FastifyInstance,
  user: TestUser,
  limit: number,
  between?: (page: number) => Promise<void>,
) {
  const ids: string[] = [];
  let cursor: string | null = null;
  let page = 0;
  do {
    const res: Reply = await call(
      app,
      'GET',
      `/v1/me/ledger?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      { token: user.token },
    );
    if (res.status !== 200) throw new Error(`ledger page failed: ${res.status} ${JSON.stringify(res.body)}`);
    ids.push(...res.body.items.map((e: Entry) => e.id));
    cursor = res.body.nextCursor;
    if (between && cursor) await between(page);
    page++;
  } while (cursor);
  return { ids, pages: page };
}

t.test('a walk of /me/ledger serves the entries committed when it began, each once', async (t) => {
  const { app, db } = await buildTestApp(t);
  const {
    circle,
    members: [ann],
  } = await circleWithRoles(app, { members: 1 });
  const accounts = await ledgerAccounts(db, circle.id, ann!.id);
  const book = (executor: Parameters<typeof bookLedgerEntries>[0], count: number, description: string) =>
    bookLedgerEntries(executor, { circleId: circle.id, accounts, count, description });
  await book(db, 6, 'early');
  // A slow writer: its entry takes an id now and commits after the walk's first page.
  const slow = await heldTransaction(db, (trx) => book(trx, 1, 'late writer'));
  await book(db, 6, 'committed above it');
  const [late] = slow.value;

  const committedNow = async () =>
    (
      await sql<{ id: number }>`
        SELECT id FROM ledger_entries WHERE account_id = ${accounts.member}::uuid ORDER BY id DESC`.execute(db)
    ).rows.map((r) => String(r.id));
  const atStart = await committedNow();
  t.equal(atStart.length, 12);
  t.notOk(atStart.includes(String(late)), 'the slow entry is not committed yet');

  let arrived = 0;
  const walk = await walkLedger(app, ann!, 4, async (page) => {
    if (page === 0) await slow.commit(); // a lower id commits behind the cursor's position
    await book(db, 1, `arrived during page ${page}`); // and newer ones on top
    arrived++;
  });
  t.equal(walk.pages, 3, 'three pages of four');
  t.equal(arrived, 2);
  t.equal(new Set(walk.ids).size, walk.ids.length, 'no entry served twice');
  t.same(walk.ids, atStart, 'exactly the entries committed when the walk began, newest first');
  t.notOk(walk.ids.includes(String(late)), 'the late entry is left out of this walk');

  const fresh = await walkLedger(app, ann!, 200);
  t.same(fresh.ids, await committedNow(), 'a new walk shows every entry, the late one in its place');
  t.equal(fresh.ids.length, atStart.length + 1 + arrived);
  t.ok(fresh.ids.includes(String(late)));
});

t.test('the cursor carries the snapshot: one without it, or with a forged one, is 400', async (t) => {
  const { app, db } = await buildTestApp(t);
  const {
    circle,
    members: [ann],
  } = await circleWithRoles(app, { members: 1 });
  const accounts = await ledgerAccounts(db, circle.id, ann!.id);
  await bookLedgerEntries(db, { circleId: circle.id, accounts, count: 3, description: 'payout' });
  const first = await call(app, 'GET', '/v1/me/ledger?limit=1', { token: ann!.token });
  t.equal(first.status, 200);
  const key = JSON.parse(Buffer.from(first.body.nextCursor, 'base64url').toString('utf8')) as [string, number];
  t.match(key[0], /^\d+:\d+:/, 'the first part is the snapshot of the first page');
  t.equal(String(key[1]), first.body.items[0].id, 'the second the last id served');

  for (const forged of [[key[1]], [key[0]], ['x', key[1]], ['2:1:', key[1]], [key[0], 'x']]) {
    const res = await call(app, 'GET', `/v1/me/ledger?limit=1&cursor=${encodeCursor(forged)}`, { token: ann!.token });
    t.ok(isProblem(res, 400, 'invalid_cursor'), `${JSON.stringify(forged)}: ${res.status}`);
  }
});
