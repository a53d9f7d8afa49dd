import t from 'tap';
import { buildTestApp, call, isProblem, type Reply, type TestUser } from '../helper.js';
import { joinMembers } from '../marketplace-helpers.js';
import { checkIn, clockAt, createChallenge, membersSinceLongAgo, openCircle } from '../challenge-helpers.js';

// The challenge leaderboard: its three orders with their tie-breaks and shared ranks, the caller's
// own row, and paging that neither repeats nor skips anyone while new members join the board.

const LONG_TOKENS = { ACCESS_TOKEN_TTL_SECONDS: '86400' };

/** Today's check-in plus make-ups for the `days` days before it (the allowance permitting). */
async function checkInDays(app: Parameters<typeof checkIn>[0], user: TestUser, challengeId: string, days: number[]) {
  for (const d of days) {
    const date =
      d === 0 ? undefined : new Date(Date.parse('2026-10-20T00:00:00Z') - d * 86_400_000).toISOString().slice(0, 10);
    const res = await checkIn(app, user, challengeId, date ? { date } : {});
    if (res.status !== 201) throw new Error(`check-in failed: ${res.status} ${JSON.stringify(res.body)}`);
  }
}

t.test('orders, ties and ranks; my own row', async (t) => {
  clockAt(t, '2026-10-20T04:00:00Z'); // noon on 20 October in Shanghai
  const { app } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, members, outsider } = await openCircle(app, 4);
  const c = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-10-01',
    endsOn: '2026-10-31',
    timezone: 'Asia/Shanghai',
    makeUpAllowance: 10,
    makeUpWindowDays: 10,
  });
  const [ann, ben, cat, dan] = members as [TestUser, TestUser, TestUser, TestUser];
  await checkInDays(app, ann, c.id, [0, 1, 2]); // 3 check-ins, current 3
  await checkInDays(app, ben, c.id, [0, 2, 3, 5, 6, 7]); // 6, current 1, best 3
  await checkInDays(app, cat, c.id, [1, 2, 3]); // 3, current 3 (today still open)
  await checkInDays(app, dan, c.id, [4]); // 1, current 0

  const board = async (query: string, who: TestUser = ann) => {
    const res = await call(app, 'GET', `/v1/challenges/${c.id}/leaderboard?${query}`, { token: who.token });
    t.equal(res.status, 200, `${query}: ${JSON.stringify(res.body)}`);
    return res.body as {
      items: { rank: number; userId: string; checkins: number; currentStreak: number; bestStreak: number }[];
      nextCursor: string | null;
    };
  };
  const byId = new Map(members.map((m, i) => [m.id, ['ann', 'ben', 'cat', 'dan'][i]]));
  const names = (b: Awaited<ReturnType<typeof board>>) => b.items.map((i) => `${i.rank}:${byId.get(i.userId)}`);
  const [annAndCat] = [[ann.id, cat.id].sort()];
  const tiedOrder = annAndCat!.map((id) => byId.get(id));

  const checkins = await board('');
  t.same(names(checkins), ['1:ben', `2:${tiedOrder[0]}`, `2:${tiedOrder[1]}`, '4:dan'], 'ann and cat tie on 3, 3, 3');
  t.match(checkins.items[0], { userId: ben.id, checkins: 6, currentStreak: 1, bestStreak: 3 });
  t.match(
    checkins.items.find((i) => i.userId === dan.id),
    { checkins: 1, currentStreak: 0, bestStreak: 1 },
  );
  const current = await board('sort=current');
  t.same(names(current).slice(2), ['3:ben', '4:dan']);
  const best = await board('sort=best');
  t.same(names(best).slice(0, 2), [`1:${tiedOrder[0]}`, `1:${tiedOrder[1]}`], 'best 3, current 3');
  t.same(names(best).slice(2), ['3:ben', '4:dan']);

  t.same(names(await board('me=true', dan)), ['4:dan']);
  const mine = await board('me=true&sort=current', owner);
  t.same(
    mine.items.map((i) => [i.rank, i.userId, i.checkins]),
    [[5, owner.id, 0]],
    'not on the board: ranked after everyone ahead (dan, current 0, has a best of 1)',
  );
  t.equal(mine.nextCursor, null);
  const res = await call(app, 'GET', `/v1/challenges/${c.id}/leaderboard`, { token: outsider.token });
  t.ok(isProblem(res, 404, 'challenge_not_found'));
  const wrongSort = await call(
    app,
    'GET',
    `/v1/challenges/${c.id}/leaderboard?limit=1&sort=best&cursor=${(await board('limit=1')).nextCursor}`,
    {
      token: ann.token,
    },
  );
  t.ok(isProblem(wrongSort, 400, 'invalid_cursor'), 'a cursor of another sort');
});

t.test('paging while new members check in: no one on the board is repeated or skipped', async (t) => {
  clockAt(t, '2026-10-20T04:00:00Z');
  const { app } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle } = await openCircle(app, 0);
  const c = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-10-01',
    endsOn: '2026-10-31',
    timezone: 'Asia/Shanghai',
    makeUpAllowance: 3,
    makeUpWindowDays: 5,
  });
  const early = await joinMembers(app, circle.id, 15);
  await membersSinceLongAgo(app.db, circle.id);
  // Many ties: check-ins of 1, 2 or 3 days.
  for (const [i, m] of early.entries()) await checkInDays(app, m, c.id, [0, 1, 2].slice(0, (i % 3) + 1));
  const late = await joinMembers(app, circle.id, 6);

  for (const sort of ['checkins', 'current', 'best']) {
    const seen: string[] = [];
    let cursor: string | null = null;
    let page = 0;
    do {
      const res: Reply = await call(
        app,
        'GET',
        `/v1/challenges/${c.id}/leaderboard?sort=${sort}&limit=4${cursor ? `&cursor=${cursor}` : ''}`,
        {
          token: owner.token,
        },
      );
      t.equal(res.status, 200);
      seen.push(...res.body.items.map((i: { userId: string }) => i.userId));
      cursor = res.body.nextCursor;
      // Between pages, a newcomer checks in (one day: they sort among the lowest).
      const newcomer = late[(page++ + (sort === 'checkins' ? 0 : sort === 'current' ? 2 : 4)) % late.length]!;
      if (page <= 2) await checkIn(app, newcomer, c.id);
    } while (cursor);
    t.equal(new Set(seen).size, seen.length, `${sort}: nobody twice`);
    t.same(
      early.map((m) => m.id).filter((id) => !seen.includes(id)),
      [],
      `${sort}: everyone on the board when paging began was served`,
    );
  }
});

t.test('members who left are not on the board nor counted in ranks; paging stays consistent', async (t) => {
  clockAt(t, '2026-10-20T04:00:00Z');
  const { app } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, members } = await openCircle(app, 6);
  const c = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-10-01',
    endsOn: '2026-10-31',
    timezone: 'Asia/Shanghai',
    makeUpAllowance: 5,
    makeUpWindowDays: 7,
  });
  const [ann, ben, cat, dan, eve, fay] = members as [TestUser, TestUser, TestUser, TestUser, TestUser, TestUser];
  await checkInDays(app, ben, c.id, [0, 1, 2, 3, 4, 5]); // 6: the top, until he leaves
  await checkInDays(app, eve, c.id, [0, 1, 2, 3, 4]); // 5: removed by the owner
  await checkInDays(app, ann, c.id, [0, 1, 2, 3]); // 4
  await checkInDays(app, cat, c.id, [0, 1, 2]); // 3
  await checkInDays(app, dan, c.id, [0, 1]); // 2
  await checkInDays(app, fay, c.id, [0]); // 1
  const leave = async (who: TestUser, by: TestUser = who) =>
    t.equal((await call(app, 'DELETE', `/v1/circles/${circle.id}/members/${who.id}`, { token: by.token })).status, 204);
  await leave(ben);
  await leave(eve, owner);
  const byId = new Map(members.map((m, i) => [m.id, ['ann', 'ben', 'cat', 'dan', 'eve', 'fay'][i]]));

  /** Every page of the board in one sort; `between` runs after each page. */
  const walk = async (sort: string, between: (page: number) => Promise<void> = async () => {}) => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let page = 0;
    do {
      const res: Reply = await call(
        app,
        'GET',
        `/v1/challenges/${c.id}/leaderboard?sort=${sort}&limit=1${cursor ? `&cursor=${cursor}` : ''}`,
        { token: owner.token },
      );
      t.equal(res.status, 200);
      seen.push(...res.body.items.map((i: { rank: number; userId: string }) => `${i.rank}:${byId.get(i.userId)}`));
      cursor = res.body.nextCursor;
      await between(++page);
    } while (cursor);
    return seen;
  };
  for (const sort of ['checkins', 'current', 'best'])
    t.same(await walk(sort), ['1:ann', '2:cat', '3:dan', '4:fay'], `${sort}: current members, ranked among themselves`);
  const mine = await call(app, 'GET', `/v1/challenges/${c.id}/leaderboard?me=true`, { token: ann.token });
  t.same(
    mine.body.items.map((i: { rank: number; userId: string }) => [i.rank, i.userId]),
    [[1, ann.id]],
  );

  // cat leaves while the board is paged after ann's row: served once at most, nobody else skipped.
  const paged = await walk('checkins', async (page) => {
    if (page === 1) await leave(cat);
  });
  t.same(paged, ['1:ann', '2:dan', '3:fay'], 'cat gone from the later pages, the rest in order');

  // Rejoining brings ben back with the check-ins he made.
  t.equal((await call(app, 'POST', `/v1/circles/${circle.id}/members`, { token: ben.token, body: {} })).status, 201);
  t.same(await walk('checkins'), ['1:ben', '2:ann', '3:dan', '4:fay']);
});
