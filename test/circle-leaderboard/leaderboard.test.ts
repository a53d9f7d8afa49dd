import t from 'tap';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../../src/infra/postgres.js';
import { buildTestApp, call, isProblem, type TestUser } from '../helper.js';
import { circleWithRoles, createProject } from '../marketplace-helpers.js';
import { adjust } from '../settlement-helpers.js';
import { heldTransaction } from '../held-transaction.js';

// GET /v1/circles/:id/leaderboard: points from every source in a rolling window, ranked with a
// deterministic tie order, the caller's own row, and pages of one board while points keep coming.

type Row = { rank: number; userId: string; handle: string; displayName: string; points: number };

/** A ledger row written straight in SQL, `daysAgo` days back: the test's control of time. */
async function contribute(db: Db, circleId: string, userId: string, points: number, daysAgo: number, reason = 'award') {
  // An owner's adjustment: every source counts alike on the board, and check-in rows need a
  // check-in behind them (contributions_checkin_source).
  await sql`
    INSERT INTO contributions (circle_id, user_id, source, points, reason, created_at)
    VALUES (${circleId}, ${userId}, 'adjustment', ${points}, ${reason},
            now() - make_interval(days => ${daysAgo}))`.execute(db);
}

async function board(app: FastifyInstance, user: TestUser, circleId: string, query = '') {
  const res = await call(app, 'GET', `/v1/circles/${circleId}/leaderboard${query}`, { token: user.token });
  if (res.status !== 200) throw new Error(`leaderboard failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { window: string; items: Row[]; nextCursor: string | null; me?: Row | { rank: null } };
}

t.test('points from every source per window, ranked, ties in a fixed order, the caller’s own row', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, circle, admin, members, outsider } = await circleWithRoles(app, { members: 4 });
  const [ann, bob, cat, dan] = members as [TestUser, TestUser, TestUser, TestUser];
  const project = await createProject(app, owner, circle.id);

  // ann: 30 check-in points 2 days ago, then 20 by adjustment now: 50 in every window
  await contribute(db, circle.id, ann.id, 30, 2);
  await adjust(app, owner, project.id, ann.id, 20);
  // bob: 50 check-in points 10 days ago (30d and all), 100 forty days ago (all only)
  await contribute(db, circle.id, bob.id, 100, 40);
  await contribute(db, circle.id, bob.id, 50, 10);
  // cat: 50 in the last week, first scoring after ann -> ties with ann, after her
  await contribute(db, circle.id, cat.id, 50, 1);
  // admin: 80 now, then a correction of -30: 50 net, last to score
  await contribute(db, circle.id, admin.id, 80, 0);
  await contribute(db, circle.id, admin.id, -30, 0, 'correction');
  // dan earns nothing

  const week = await board(app, dan, circle.id, '?window=7d&me=true');
  t.equal(week.window, '7d');
  t.same(
    week.items.map((r) => [r.rank, r.handle, r.points]),
    [
      [1, ann.handle, 50],
      [1, cat.handle, 50],
      [1, admin.handle, 50],
    ],
    'equal points share rank 1; the earliest to score in the window comes first',
  );
  t.same(
    week.me,
    { rank: null, userId: dan.id, handle: dan.handle, displayName: dan.handle, points: 0 },
    'dan: no rank',
  );

  const month = await board(app, bob, circle.id, '?window=30d&me=true');
  t.same(
    month.items.map((r) => [r.rank, r.handle, r.points]),
    [
      [1, bob.handle, 50],
      [1, ann.handle, 50],
      [1, cat.handle, 50],
      [1, admin.handle, 50],
    ],
    'bob scored first in the 30-day window (10 days ago)',
  );
  t.same(month.me, month.items[0], 'bob’s own row');

  const all = await board(app, ann, circle.id, '?window=all&me=true');
  t.same(
    all.items.map((r) => [r.rank, r.handle, r.points]),
    [
      [1, bob.handle, 150],
      [2, ann.handle, 50],
      [2, cat.handle, 50],
      [2, admin.handle, 50],
    ],
    'all time: bob first; the rest share rank 2, in the order they first scored',
  );
  t.equal((all.me as Row).rank, 2);
  t.equal((await board(app, ann, circle.id)).window, '30d', 'the default window is 30 days');

  t.ok(isProblem(await call(app, 'GET', `/v1/circles/${circle.id}/leaderboard`, { token: outsider.token }), 404));
  t.ok(
    isProblem(await call(app, 'GET', `/v1/circles/${circle.id}/leaderboard?window=1y`, { token: ann.token }), 400),
    'an unknown window is 400',
  );
  const paged = await board(app, ann, circle.id, '?window=all&limit=1');
  t.ok(
    isProblem(
      await call(app, 'GET', `/v1/circles/${circle.id}/leaderboard?window=7d&cursor=${paged.nextCursor}`, {
        token: ann.token,
      }),
      400,
      'invalid_cursor',
    ),
    'a cursor of another window is 400',
  );

  // A member who left is off the board.
  await call(app, 'DELETE', `/v1/circles/${circle.id}/members/${cat.id}`, { token: cat.token });
  t.notOk(
    (await board(app, ann, circle.id, '?window=all')).items.some((r) => r.userId === cat.id),
    'members who left are not ranked',
  );
});

t.test('a walk pages one board: no repeats or gaps while points are earned and commit late', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, circle, members } = await circleWithRoles(app, { members: 12 });
  const project = await createProject(app, owner, circle.id);
  // Points 10, 20, ..., 120; and two pairs of ties.
  for (const [i, m] of members.entries()) await contribute(db, circle.id, m.id, (i + 1) * 10, 1);
  await contribute(db, circle.id, members[0]!.id, 20, 1); // 30: ties with members[2]
  await contribute(db, circle.id, members[3]!.id, 10, 1); // 50: ties with members[4]

  const atStart = await board(app, owner, circle.id, '?limit=200');
  t.equal(atStart.items.length, 12);

  // A slow adjustment that would lift the last member to the top commits in the middle of the walk.
  const slow = await heldTransaction(db, async (trx) => {
    await sql`INSERT INTO contributions (circle_id, user_id, source, points, reason)
              VALUES (${circle.id}, ${members[0]!.id}, 'adjustment', 1000, 'late')`.execute(trx);
  });

  const served: Row[] = [];
  let cursor: string | null = null;
  let turn = 0;
  do {
    const page = await board(app, owner, circle.id, `?limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    served.push(...page.items);
    cursor = page.nextCursor;
    if (turn === 0) await slow.commit();
    // Points that reorder the board: the member just served drops behind everyone, the last rises.
    if (cursor) {
      await adjust(app, owner, project.id, members[turn]!.id, 500);
      await contribute(db, circle.id, page.items[0]!.userId, -1000, 0, 'correction');
    }
    turn++;
  } while (cursor);
  t.equal(turn, 3, 'three pages of five');
  t.same(served, atStart.items, 'the walk served the board as it stood at its first page, each member once');

  const after = await board(app, owner, circle.id, '?limit=200');
  t.equal(after.items[0]!.userId, members[0]!.id, 'a new walk has the new standings');
  t.equal(after.items[0]!.points, 30 + 1000 + 500);
});
