import { Writable } from 'node:stream';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import pino from 'pino';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import type { KeysetPageMessage } from '../../src/infra/keyset-walk.js';
import { buildTestApp, call, createTestEnv, isProblem, registerUser } from '../helper.js';
import { addTasks, circleWithRoles, completeTask, createProject } from '../marketplace-helpers.js';
import { adjust, seedContributions } from '../settlement-helpers.js';
import { parseCsv } from './parse-csv.js';

// The CSV exports over HTTP: who may download them, the headers, the content parsed back (Chinese
// text included), and the streaming itself: a large export arrives whole, its first chunk before
// the walk has read every page, and a database failure mid-stream ends the response and is logged.

const BOM = '\uFEFF';
const CONTRIBUTIONS_HEADER = ['created_at', 'handle', 'display_name', 'source', 'points', 'task_title', 'reason'];

/** Counts the keyset pages each walk reads while `fn` runs. */
async function countingPages<T>(fn: (pages: Record<string, number>) => Promise<T>): Promise<T> {
  const pages: Record<string, number> = {};
  const onPage = (message: unknown) => {
    const m = message as KeysetPageMessage;
    pages[m.walk] = (pages[m.walk] ?? 0) + 1;
  };
  subscribe('circle-actions:keyset-page', onPage);
  try {
    return await fn(pages);
  } finally {
    unsubscribe('circle-actions:keyset-page', onPage);
  }
}

/** GET as a stream: the headers at once, then the body chunk by chunk as the test reads it. */
async function streamed(app: FastifyInstance, url: string, token: string) {
  const res = await app.inject({
    method: 'GET',
    url,
    headers: { authorization: `Bearer ${token}` },
    payloadAsStream: true,
  });
  return { res, stream: res.stream() };
}

t.test('GET /projects/:id/contributions.csv: members download every row; Chinese text round-trips', async (t) => {
  const { app, db } = await buildTestApp(t);
  const {
    owner,
    circle,
    admin,
    members: [ann, ben],
    outsider,
  } = await circleWithRoles(app, { members: 2 });
  await call(app, 'PATCH', '/v1/me', { token: ann!.token, body: { displayName: '林小读' } });
  const project = await createProject(app, owner, circle.id, { title: '《论语》译注 / 第一卷' });
  const [task] = await addTasks(app, owner, project.id, [{ title: '翻译"学而"篇, 第一章', weight: 3 }]);
  await completeTask(app, owner, ann!, task!.id);
  await adjust(app, owner, project.id, ben!.id, 50, '=HYPERLINK("http://evil.example","点我")');
  await adjust(app, owner, project.id, ann!.id, -20, '重复计算，扣回\n第二行');
  const other = await createProject(app, owner, circle.id);
  await adjust(app, owner, other.id, ann!.id, 7, 'another project');

  const url = `/v1/projects/${project.id}/contributions.csv`;
  for (const who of [ben!, admin, owner]) {
    const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${who.token}` } });
    t.equal(res.statusCode, 200);
  }
  const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${ben!.token}` } });
  t.equal(res.headers['content-type'], 'text/csv; charset=utf-8');
  const disposition = String(res.headers['content-disposition']);
  t.match(disposition, new RegExp(`^attachment; filename="contributions-${project.id}\\.csv"; filename\\*=UTF-8''`));
  t.equal(decodeURIComponent(disposition.split("filename*=UTF-8''")[1]!), '《论语》译注 _ 第一卷 contributions.csv');
  t.ok(res.rawPayload.subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf])), 'the UTF-8 byte-order mark comes first');
  const text = res.rawPayload.toString('utf8');
  t.ok(text.startsWith(BOM));
  const [header, ...rows] = parseCsv(text.slice(1));
  t.same(header, CONTRIBUTIONS_HEADER);

  const expected = await db
    .selectFrom('contributions')
    .innerJoin('users', 'users.id', 'contributions.user_id')
    .leftJoin('tasks', 'tasks.id', 'contributions.task_id')
    .select([
      'contributions.created_at',
      'users.handle',
      'users.display_name',
      'contributions.source',
      'contributions.points',
      'tasks.title',
      'contributions.reason',
    ])
    .where('contributions.project_id', '=', project.id)
    .orderBy('contributions.id')
    .execute();
  t.same(
    rows,
    expected.map((r) => [
      r.created_at.toISOString(),
      r.handle,
      r.display_name,
      r.source,
      String(r.points),
      r.title ?? '',
      r.reason === null ? '' : r.reason.startsWith('=') ? `'${r.reason}` : r.reason,
    ]),
    'one row per contribution of the project, oldest first, as stored',
  );
  t.equal(rows.length, 3);
  t.same(rows[0]!.slice(2, 6), ['林小读', 'task', '300', '翻译"学而"篇, 第一章']);
  t.equal(rows[1]![6], '\'=HYPERLINK("http://evil.example","点我")', 'the formula is shown as text');
  t.equal(rows[2]![4], '-20', 'a negative number stays a number');
  t.equal(rows[2]![6], '重复计算，扣回\n第二行');

  t.ok(isProblem(await call(app, 'GET', url, { token: outsider.token }), 404, 'project_not_found'), 'outsiders: 404');
  t.ok(isProblem(await call(app, 'GET', url), 401), 'anonymous: 401');
  t.ok(
    isProblem(
      await call(app, 'GET', '/v1/projects/00000000-0000-4000-8000-000000000000/contributions.csv', {
        token: ben!.token,
      }),
      404,
    ),
  );
  t.ok(isProblem(await call(app, 'GET', '/v1/projects/not-an-id/contributions.csv', { token: ben!.token }), 400));

  // A project without contributions: the header alone.
  const empty = await createProject(app, owner, circle.id);
  const none = await app.inject({
    method: 'GET',
    url: `/v1/projects/${empty.id}/contributions.csv`,
    headers: { authorization: `Bearer ${ben!.token}` },
  });
  t.equal(none.statusCode, 200);
  t.equal(none.body, `${BOM}${CONTRIBUTIONS_HEADER.join(',')}\r\n`);
});

t.test('a 20,000-row export streams whole, page by page, its first chunk long before the last page', async (t) => {
  const { app, db } = await buildTestApp(t);
  const {
    owner,
    circle,
    members: [ann],
  } = await circleWithRoles(app, { members: 1 });
  const project = await createProject(app, owner, circle.id, { title: 'Big' });
  await seedContributions(db, {
    circleId: circle.id,
    projectId: project.id,
    createdBy: owner.id,
    members: 40,
    rows: 20_000,
  });
  const totals = await sql<{ n: number; points: number }>`
    SELECT count(*)::int AS n, sum(points)::int AS points FROM contributions WHERE project_id = ${project.id}::uuid`.execute(
    db,
  );

  await countingPages(async (pages) => {
    const { res, stream } = await streamed(app, `/v1/projects/${project.id}/contributions.csv`, ann!.token);
    t.equal(res.statusCode, 200);
    const chunks: Buffer[] = [];
    let pagesAtFirstChunk: number | undefined;
    for await (const chunk of stream) {
      pagesAtFirstChunk ??= pages['project-contributions'] ?? 0;
      chunks.push(chunk as Buffer);
    }
    t.ok(
      pagesAtFirstChunk! >= 1 && pagesAtFirstChunk! <= 3,
      `the first chunk came after ${pagesAtFirstChunk} of 21 page reads`,
    );
    t.equal(pages['project-contributions'], 21, '20 full pages of 1,000 and the empty one that ends the walk');
    t.ok(chunks.length >= 20, `${chunks.length} chunks`);
    const [header, ...rows] = parseCsv(Buffer.concat(chunks).toString('utf8').slice(1));
    t.same(header, CONTRIBUTIONS_HEADER);
    t.equal(rows.length, totals.rows[0]!.n);
    t.equal(rows.length, 20_000);
    t.equal(
      rows.reduce((sum, r) => sum + Number(r[4]), 0),
      totals.rows[0]!.points,
      'the points add up',
    );
    const times = rows.map((r) => Date.parse(r[0]!));
    t.ok(
      times.every((time, i) => i === 0 || time >= times[i - 1]!),
      'oldest first',
    );
  });

  // A client that stops reading holds the walk: the pages read stay bounded while it waits.
  await countingPages(async (pages) => {
    const { stream } = await streamed(app, `/v1/projects/${project.id}/contributions.csv`, ann!.token);
    const first = await new Promise<Buffer>((resolve) => stream.once('data', resolve));
    stream.pause();
    t.ok(first.length > 0);
    const before = pages['project-contributions'];
    // The answer to another request proves the event loop turned while this stream sat unread.
    t.equal((await call(app, 'GET', '/v1/me', { token: ann!.token })).status, 200);
    t.ok(
      pages['project-contributions']! <= 3,
      `${pages['project-contributions']} pages read (${before} at the first chunk) while the client is not reading`,
    );
    stream.destroy();
  });
});

t.test('a database failure mid-stream ends the response and is logged; the process serves on', async (t) => {
  const env = await createTestEnv(t);
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const app = await buildApp({ config: env.config, logger: pino({ level: 'warn' }, sink) });
  t.teardown(() => app.close());
  await app.ready();
  const { db } = env;
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
    members: 10,
    rows: 10_000,
  });

  await countingPages(async (pages) => {
    const { res, stream } = await streamed(app, `/v1/projects/${project.id}/contributions.csv`, ann!.token);
    t.equal(res.statusCode, 200);
    const chunks: Buffer[] = [];
    const ended = new Promise<Error | null>((resolve) => {
      stream.on('error', resolve);
      stream.on('end', () => resolve(null));
    });
    const first = await new Promise<Buffer>((resolve) => stream.once('data', resolve));
    chunks.push(first);
    stream.pause();
    t.ok(pages['project-contributions']! < 10, 'the walk is still under way');
    // The next page's query fails: the column it names is gone.
    await sql`ALTER TABLE users RENAME COLUMN display_name TO display_name_gone`.execute(db);
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.resume();
    const error = await ended;
    await sql`ALTER TABLE users RENAME COLUMN display_name_gone TO display_name`.execute(db);
    const rows = parseCsv(Buffer.concat(chunks).toString('utf8').slice(1)).length - 1;
    t.ok(error, `the response was destroyed, not ended as if complete (${rows} rows, ${error?.message})`);
    t.ok(rows < 10_000, 'not every row was sent');
  });
  // Failing on the first page, before any byte was sent: an ordinary 500 problem, no CSV headers.
  await sql`ALTER TABLE users RENAME COLUMN display_name TO display_name_gone`.execute(db);
  const early = await app.inject({
    method: 'GET',
    url: `/v1/projects/${project.id}/contributions.csv`,
    headers: { authorization: `Bearer ${ann!.token}` },
  });
  await sql`ALTER TABLE users RENAME COLUMN display_name_gone TO display_name`.execute(db);
  t.equal(early.statusCode, 500);
  t.match(String(early.headers['content-type']), /^application\/problem\+json/);
  t.equal(early.headers['content-disposition'], undefined, 'no download is announced');
  t.ok(
    lines.some((l) => l.includes('display_name')),
    'the database error is logged',
  );
  t.equal((await call(app, 'GET', '/v1/me', { token: ann!.token })).status, 200, 'the process serves on');
  const again = await app.inject({
    method: 'GET',
    url: `/v1/projects/${project.id}/contributions.csv`,
    headers: { authorization: `Bearer ${ann!.token}` },
  });
  t.equal(parseCsv(again.body.slice(1)).length, 10_001, 'the next export is whole');
});

t.test("GET /me/ledger.csv: the caller's entries only, the fields of /me/ledger", async (t) => {
  const { app, db } = await buildTestApp(t);
  const {
    circle,
    members: [ann, ben],
  } = await circleWithRoles(app, { members: 2 });
  const anon = await registerUser(app, 'nobody');
  // Ledger rows as settlement books them, written directly: two payouts to ann, one to ben.
  const book = async (userId: string, amount: number, description: string) => {
    const accounts = await sql<{ id: string; kind: string }>`
      INSERT INTO ledger_accounts (circle_id, kind, owner_id, unit)
      VALUES (${circle.id}::uuid, 'member_balance', ${userId}::uuid, '积分'), (${circle.id}::uuid, 'owner_funding', ${circle.id}::uuid, '积分')
      ON CONFLICT (circle_id, kind, owner_id, unit) DO UPDATE SET unit = EXCLUDED.unit
      RETURNING id, kind`.execute(db);
    const member = accounts.rows.find((a) => a.kind === 'member_balance')!.id;
    const funding = accounts.rows.find((a) => a.kind === 'owner_funding')!.id;
    const tx = await sql<{ id: string }>`
      INSERT INTO ledger_transactions (circle_id, kind, description) VALUES (${circle.id}::uuid, 'settlement_payout', ${description})
      RETURNING id`.execute(db);
    await sql`INSERT INTO ledger_entries (transaction_id, account_id, amount)
      VALUES (${tx.rows[0]!.id}::uuid, ${member}::uuid, ${amount}), (${tx.rows[0]!.id}::uuid, ${funding}::uuid, ${-amount})`.execute(
      db,
    );
  };
  await book(ann!.id, 120, '结算：第一卷, "学而"');
  await book(ben!.id, 80, 'ben only');
  await book(ann!.id, 5, '+5 rounding');

  const res = await app.inject({
    method: 'GET',
    url: '/v1/me/ledger.csv',
    headers: { authorization: `Bearer ${ann!.token}` },
  });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'text/csv; charset=utf-8');
  t.equal(res.headers['content-disposition'], 'attachment; filename="ledger.csv"');
  t.ok(res.body.startsWith(BOM));
  const [header, ...rows] = parseCsv(res.body.slice(1));
  t.same(header, [
    'id',
    'circle_id',
    'unit',
    'amount',
    'transaction_id',
    'kind',
    'settlement_id',
    'description',
    'created_at',
  ]);
  const json = await call(app, 'GET', '/v1/me/ledger', { token: ann!.token });
  const items = [...json.body.items].reverse() as Record<string, unknown>[];
  t.same(
    rows,
    items.map((e) => [
      e.id,
      e.circleId,
      e.unit,
      String(e.amount),
      e.transactionId,
      e.kind,
      e.settlementId ?? '',
      String(e.description).startsWith('+') ? `'${e.description}` : e.description,
      e.createdAt,
    ]),
    'the same entries as GET /me/ledger, oldest first',
  );
  t.same(
    rows.map((r) => r[7]),
    ['结算：第一卷, "学而"', "'+5 rounding"],
  );

  const mine = await app.inject({
    method: 'GET',
    url: '/v1/me/ledger.csv',
    headers: { authorization: `Bearer ${anon.token}` },
  });
  t.equal(mine.body, `${BOM}${header!.join(',')}\r\n`, 'no entries: the header alone');
  t.ok(isProblem(await call(app, 'GET', '/v1/me/ledger.csv'), 401));
});
