import t from 'tap';
import { sql } from 'kysely';
import * as challengeCancelledOn from '../../db/migrations/0013_challenge_cancelled_on.js';
import { addDays, challengeDayAt, challengeDayStart } from '../../src/challenges/challenge-days.js';
import { buildTestApp, call, isProblem } from '../helper.js';
import { checkIn, clockAt, createChallenge, openCircle, relogin } from '../challenge-helpers.js';
import { rowCounts } from '../hostile/world.js';
import { heldTransaction } from '../held-transaction.js';
import { backendPid, waitUntilBlockedBy } from '../lock-waits.js';
import { assertInvariants } from '../settlement-helpers.js';

// Creating, listing, reading, editing and cancelling challenges: who may, what is checked, and the
// rule that a challenge's calendar is fixed once it runs.

const LONG_TOKENS = { ACCESS_TOKEN_TTL_SECONDS: '86400' };
const base = { startsOn: '2026-04-10', endsOn: '2026-04-20', timezone: 'Asia/Shanghai' };

t.test('owners and admins create; members read; bad calendars are 400 and create nothing', async (t) => {
  clockAt(t, '2026-04-01T04:00:00Z');
  const { app, db } = await buildTestApp(t, LONG_TOKENS);
  const { owner, admin, member, outsider, circle } = await openCircle(app);
  const url = `/v1/circles/${circle.id}/challenges`;
  const created = await call(app, 'POST', url, {
    token: owner.token,
    body: { title: ' 每日阅读 ', description: 'One passage a day', pointsPerCheckin: 10, ...base, dayStartsAt: 60 },
  });
  t.equal(created.status, 201);
  t.match(created.body, {
    circleId: circle.id,
    title: '每日阅读',
    status: 'active',
    today: '2026-04-01',
    startsOn: '2026-04-10',
    endsOn: '2026-04-20',
    dayStartsAt: 60,
    minContentLength: 1,
    makeUpAllowance: 0,
    makeUpWindowDays: 7,
    freezesPerMember: 0,
    startsAt: '2026-04-09T17:00:00.000Z',
    endsAt: '2026-04-20T17:00:00.000Z',
    closedAt: null,
  });
  t.equal(
    (
      await call(app, 'POST', url, {
        token: admin.token,
        body: { title: 'By the admin', pointsPerCheckin: 1, ...base },
      })
    ).status,
    201,
  );
  const counts = await rowCounts(db);
  const refused: [typeof owner, Record<string, unknown>, number, string][] = [
    [member, base, 403, 'forbidden'],
    [outsider, base, 404, 'circle_not_found'],
    [owner, { ...base, timezone: 'Moon/Tranquility' }, 400, 'invalid_timezone'],
    [owner, { ...base, timezone: '+08:00' }, 400, 'invalid_timezone'],
    [owner, { ...base, endsOn: '2026-04-31' }, 400, 'invalid_request'],
    [owner, { ...base, startsOn: '1800-01-01' }, 400, 'invalid_date'],
    [owner, { ...base, endsOn: '2026-04-09' }, 400, 'invalid_challenge_dates'],
    [owner, { ...base, startsOn: '2026-03-01', endsOn: '2026-03-31' }, 400, 'invalid_challenge_dates'],
    [owner, { ...base, endsOn: '2027-04-11' }, 400, 'invalid_challenge_dates'],
    [owner, { ...base, dayStartsAt: 361 }, 400, 'invalid_request'],
    [owner, { ...base, title: '   ' }, 400, 'invalid_request'],
  ];
  for (const [who, body, status, code] of refused) {
    const res = await call(app, 'POST', url, { token: who.token, body: { title: 'T', pointsPerCheckin: 1, ...body } });
    t.ok(isProblem(res, status, code), `${JSON.stringify(body)}: ${res.status} ${res.body.code}`);
  }
  t.same(await rowCounts(db), counts, 'refusals changed nothing');
  const createdEvent = await db.selectFrom('events').select('type').where('subject_id', '=', created.body.id).execute();
  t.same(createdEvent, [{ type: 'challenge.created' }]);

  const first = await call(app, 'GET', `${url}?limit=1`, { token: member.token });
  t.equal(first.body.items[0].title, 'By the admin', 'newest first');
  const second = await call(app, 'GET', `${url}?limit=1&cursor=${first.body.nextCursor}`, { token: member.token });
  t.equal(second.body.items[0].id, created.body.id);
  t.equal(second.body.nextCursor, null);
  t.ok(isProblem(await call(app, 'GET', url, { token: outsider.token }), 404, 'circle_not_found'));
  const one = await call(app, 'GET', `/v1/challenges/${created.body.id}`, { token: member.token });
  t.match(one.body, {
    id: created.body.id,
    me: { checkins: 0, checkedInToday: false, streak: { current: 0, best: 0 }, makeUpsLeft: 0, freezesLeft: 0 },
  });
  t.ok(
    isProblem(
      await call(app, 'GET', `/v1/challenges/${created.body.id}`, { token: outsider.token }),
      404,
      'challenge_not_found',
    ),
  );
});

t.test(
  'a zone is an IANA name Node and Postgres both know, spelled exactly: abbreviations and other cases are 400',
  async (t) => {
    clockAt(t, '2026-04-01T04:00:00Z');
    const { app, db } = await buildTestApp(t, LONG_TOKENS);
    const { owner, circle } = await openCircle(app);
    const url = `/v1/circles/${circle.id}/challenges`;
    const c = await createChallenge(app, owner, circle.id, base);
    // Intl reads BST as Asia/Dhaka, IST as Asia/Calcutta and CST as America/Chicago, and takes any
    // letter case; Postgres reads the abbreviations otherwise and knows only the exact spelling.
    const refused = ['BST', 'IST', 'CST', 'EST', 'GMT', 'europe/london', 'ASIA/SHANGHAI', 'utc', 'Asia/shanghai'];
    const counts = await rowCounts(db);
    for (const timezone of refused) {
      const created = await call(app, 'POST', url, {
        token: owner.token,
        body: { title: 'T', pointsPerCheckin: 1, ...base, timezone },
      });
      t.ok(
        isProblem(created, 400, 'invalid_timezone'),
        `create in ${timezone}: ${created.status} ${created.body.code}`,
      );
      t.same(created.body.errors, [{ path: 'body/timezone', message: 'must be an IANA time zone name' }]);
      const edited = await call(app, 'PATCH', `/v1/challenges/${c.id}`, { token: owner.token, body: { timezone } });
      t.ok(isProblem(edited, 400, 'invalid_timezone'), `move to ${timezone}: ${edited.status} ${edited.body.code}`);
    }
    t.same(await rowCounts(db), counts, 'no challenge created or changed, no event written');
    const row = await db.selectFrom('challenges').select('timezone').where('id', '=', c.id).executeTakeFirstOrThrow();
    t.equal(row.timezone, 'Asia/Shanghai');
    for (const timezone of ['Europe/London', 'UTC', 'Asia/Kolkata'])
      t.equal(
        (await call(app, 'PATCH', `/v1/challenges/${c.id}`, { token: owner.token, body: { timezone } })).status,
        200,
        timezone,
      );
  },
);

t.test('edits: rules before the first day only; zone and day start never once anyone checked in', async (t) => {
  const clock = clockAt(t, '2026-04-01T04:00:00Z');
  const { app, db } = await buildTestApp(t, LONG_TOKENS);
  const { owner, member, circle } = await openCircle(app);
  const c = await createChallenge(app, owner, circle.id, base);
  const patch = (body: Record<string, unknown>, who = owner) =>
    call(app, 'PATCH', `/v1/challenges/${c.id}`, { token: who.token, body });
  t.ok(isProblem(await patch({ title: 'x' }, member), 403, 'forbidden'));
  const edited = await patch({ timezone: 'Europe/Paris', dayStartsAt: 30, freezesPerMember: 2, title: 'Read' });
  t.equal(edited.status, 200);
  t.match(edited.body, {
    timezone: 'Europe/Paris',
    dayStartsAt: 30,
    freezesPerMember: 2,
    title: 'Read',
    endsAt: '2026-04-20T22:30:00.000Z',
  });
  const event = await db
    .selectFrom('events')
    .select('payload')
    .where('type', '=', 'challenge.updated')
    .executeTakeFirstOrThrow();
  t.same(event.payload, {
    changes: {
      title: { from: 'Daily reading', to: 'Read' },
      timezone: { from: 'Asia/Shanghai', to: 'Europe/Paris' },
      dayStartsAt: { from: 0, to: 30 },
      freezesPerMember: { from: 0, to: 2 },
    },
  });
  t.equal((await patch({ title: 'Read' })).status, 200, 'no change');
  t.equal(
    (await db.selectFrom('events').select('id').where('type', '=', 'challenge.updated').execute()).length,
    1,
    'an edit that changes nothing records nothing',
  );
  t.ok(isProblem(await patch({ endsOn: '2026-04-01' }), 400, 'invalid_challenge_dates'));

  clock.set('2026-04-10T12:00:00Z'); // the first day in Paris
  const o = await relogin(app, owner);
  t.ok(isProblem(await patch({ pointsPerCheckin: 99 }, o), 409, 'challenge_started'));
  t.equal((await patch({ description: 'Now with a description' }, o)).status, 200, 'words may change');

  // A challenge that has begun in Kiritimati (UTC+14) has not yet begun in Pago Pago (UTC-11):
  // moving it there would reopen its rules, but a check-in is already counted in the old zone.
  clock.set('2026-05-01T12:00:00Z'); // 2 May in Kiritimati, 1 May in Pago Pago
  const o2 = await relogin(app, owner);
  const east = await createChallenge(app, o2, circle.id, {
    startsOn: '2026-05-02',
    endsOn: '2026-05-09',
    timezone: 'Pacific/Kiritimati',
  });
  t.equal((await checkIn(app, await relogin(app, member), east.id)).status, 201);
  const moved = await call(app, 'PATCH', `/v1/challenges/${east.id}`, {
    token: o2.token,
    body: { timezone: 'Pacific/Pago_Pago' },
  });
  t.ok(isProblem(moved, 409, 'challenge_has_checkins'), `${moved.status} ${moved.body.code}`);
});

t.test('cancelling: once, by a manager; check-ins stop, points stay', async (t) => {
  clockAt(t, '2026-04-12T04:00:00Z');
  const { app, db } = await buildTestApp(t, LONG_TOKENS);
  const { owner, admin, member, circle } = await openCircle(app);
  const c = await createChallenge(app, owner, circle.id, base);
  t.equal((await checkIn(app, member, c.id)).status, 201);
  const cancel = (who = admin, body: Record<string, unknown> = { reason: 'Holiday' }) =>
    call(app, 'POST', `/v1/challenges/${c.id}/cancel`, { token: who.token, body });
  t.ok(isProblem(await cancel(member), 403, 'forbidden'));
  const done = await cancel();
  t.equal(done.status, 200);
  t.match(done.body, { status: 'cancelled', cancelReason: 'Holiday' });
  t.ok(isProblem(await cancel(owner), 409, 'challenge_cancelled'));
  t.ok(isProblem(await checkIn(app, member, c.id), 409, 'challenge_cancelled'));
  t.ok(
    isProblem(
      await call(app, 'PATCH', `/v1/challenges/${c.id}`, { token: owner.token, body: { title: 'x' } }),
      409,
      'challenge_cancelled',
    ),
  );
  const points = await db.selectFrom('contributions').select('points').where('source', '=', 'checkin').execute();
  t.same(points, [{ points: 10 }]);
  const types = await db.selectFrom('events').select('type').where('subject_id', '=', c.id).orderBy('id').execute();
  t.same(
    types.map((e) => e.type),
    ['challenge.created', 'challenge.cancelled'],
  );
});

t.test('a cancel that waited for a check-in across midnight cancels on the later day', async (t) => {
  // A check-in holds the challenge shared while it runs; a cancel waits for it. Check-ins that
  // arrive meanwhile share the lock at once (Postgres lets share lockers pass a waiting writer).
  // The cancel must read the clock once it holds the lock: read on arrival, it would cancel on
  // a day before a check-in it let through, and the streaks would stop before that check-in.
  const clock = clockAt(t, '2026-04-12T15:59:59.500Z'); // 23:59:59.5 on 12 April in Shanghai
  const { app, db } = await buildTestApp(t, LONG_TOKENS);
  const { owner, admin, member, circle } = await openCircle(app);
  const c = await createChallenge(app, owner, circle.id, base);
  const inFlight = await heldTransaction(db, async (trx) => {
    await sql`SELECT 1 FROM challenges WHERE id = ${c.id}::uuid FOR SHARE`.execute(trx);
    return backendPid(trx);
  });
  const cancelling = call(app, 'POST', `/v1/challenges/${c.id}/cancel`, { token: admin.token, body: {} });
  await waitUntilBlockedBy(db, inFlight.value);
  clock.set('2026-04-12T16:00:01Z'); // 00:00:01 on 13 April
  const late = await checkIn(app, member, c.id);
  t.match(late, { status: 201, body: { localDate: '2026-04-13' } }, 'a check-in passes the waiting cancel');
  await inFlight.commit();
  t.equal((await cancelling).status, 200);
  const row = await db.selectFrom('challenges').select('cancelled_on').where('id', '=', c.id).executeTakeFirstOrThrow();
  t.equal(row.cancelled_on, '2026-04-13', 'cancelled on the day it got the lock');
  await assertInvariants(t, db);
});

t.test('dates run up to 9998-12-31: the last possible challenge works end to end, 9999 is 400', async (t) => {
  // The last day of the year 9998 in Kiritimati (UTC+14): its end, the start of 9999-01-01 there,
  // and the day streaks are read on afterwards lie in 9999.
  const clock = clockAt(t, '9998-12-30T12:00:00Z');
  const { app, db } = await buildTestApp(t, LONG_TOKENS);
  const { owner, member, circle } = await openCircle(app);
  const url = `/v1/circles/${circle.id}/challenges`;
  const last = { startsOn: '9998-12-01', endsOn: '9998-12-31', timezone: 'Pacific/Kiritimati' };
  const created = await call(app, 'POST', url, {
    token: owner.token,
    body: { title: 'The last December', pointsPerCheckin: 3, makeUpAllowance: 1, ...last },
  });
  t.equal(created.status, 201, `${created.status} ${created.body.code}`);
  t.match(created.body, { ...last, today: '9998-12-31', endsAt: '9998-12-31T10:00:00.000Z' });
  const id = created.body.id;
  t.equal((await checkIn(app, member, id)).status, 201, 'a check-in on the last day');
  const makeUp = await checkIn(app, member, id, { date: '9998-12-30' });
  t.equal(makeUp.status, 201);
  t.match(makeUp.body, { localDate: '9998-12-30', makeUp: true, streak: { current: 2, best: 2 } });
  const mine = await call(app, 'GET', `/v1/challenges/${id}/checkins`, { token: member.token });
  t.same(
    mine.body.items.map((c: { localDate: string }) => c.localDate),
    ['9998-12-31', '9998-12-30'],
  );
  const board = async () => {
    const res = await call(app, 'GET', `/v1/challenges/${id}/leaderboard`, {
      token: (await relogin(app, member)).token,
    });
    t.equal(res.status, 200);
    return res.body.items.map((r: { userId: string; checkins: number; currentStreak: number }) => [
      r.userId,
      r.checkins,
      r.currentStreak,
    ]);
  };
  t.same(await board(), [[member.id, 2, 2]]);

  // A day later is refused, never a 500: creating, and moving a challenge there.
  const upcoming = await createChallenge(app, owner, circle.id, {
    startsOn: '9998-12-31',
    endsOn: '9998-12-31',
    timezone: 'UTC',
  });
  const counts = await rowCounts(db);
  for (const dates of [
    { startsOn: '9999-01-01', endsOn: '9999-12-31' },
    { startsOn: '9998-12-31', endsOn: '9999-01-01' },
  ]) {
    const res = await call(app, 'POST', url, {
      token: owner.token,
      body: { title: 'T', pointsPerCheckin: 1, timezone: 'UTC', ...dates },
    });
    t.ok(isProblem(res, 400, 'invalid_date'), `create ${JSON.stringify(dates)}: ${res.status} ${res.body.code}`);
    t.ok(
      res.body.errors?.some(
        (e: { path: string; message: string }) => e.path === 'body/endsOn' && /9998-12-31/.test(e.message),
      ),
      'the field and the last date allowed',
    );
    const moved = await call(app, 'PATCH', `/v1/challenges/${upcoming.id}`, { token: owner.token, body: dates });
    t.ok(isProblem(moved, 400, 'invalid_date'), `move ${JSON.stringify(dates)}: ${moved.status} ${moved.body.code}`);
  }
  t.same(await rowCounts(db), counts, 'refusals wrote nothing');

  clock.set('9998-12-31T11:00:00Z'); // 1 January 9999 in Kiritimati: the challenge is over
  t.same(await board(), [[member.id, 2, 2]], 'streaks stand as they were at the end');
  const after = await call(app, 'GET', `/v1/challenges/${id}`, { token: (await relogin(app, member)).token });
  t.equal(after.status, 200);
  t.match(after.body, { today: '9999-01-01', me: { checkins: 2, streak: { current: 2, best: 2 } } });
  t.ok(isProblem(await checkIn(app, await relogin(app, member), id), 409, 'challenge_ended'));
});

t.test("a cancelled challenge's streaks stand as they were on the day it was cancelled", async (t) => {
  const clock = clockAt(t, '2026-04-10T04:00:00Z');
  const { app } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, member } = await openCircle(app);
  const challenge = await createChallenge(app, owner, circle.id, { ...base, freezesPerMember: 1 });
  // Three days in a row, then the challenge is called off on the fourth, before the member's
  // check-in of that day: a day still open, not a missed one.
  for (let day = 0; day < 3; day++) {
    t.equal((await checkIn(app, await relogin(app, member), challenge.id)).status, 201);
    clock.advance(86_400_000);
  }
  const cancel = await call(app, 'POST', `/v1/challenges/${challenge.id}/cancel`, {
    token: (await relogin(app, owner)).token,
    body: { reason: 'Called off' },
  });
  t.equal(cancel.status, 200);
  const standing = async () => {
    const reader = await relogin(app, member);
    const read = await call(app, 'GET', `/v1/challenges/${challenge.id}`, { token: reader.token });
    const board = await call(app, 'GET', `/v1/challenges/${challenge.id}/leaderboard?sort=current`, {
      token: reader.token,
    });
    return { me: read.body.me, board: board.body.items.map((r: { currentStreak: number }) => r.currentStreak) };
  };
  const onTheDay = await standing();
  t.match(onTheDay, { me: { streak: { current: 3, best: 3 }, freezesLeft: 1 }, board: [3] }, 'on the day');
  for (const later of ['2026-04-16T04:00:00Z', '2026-05-30T04:00:00Z']) {
    clock.set(later);
    t.same(await standing(), onTheDay, `and the same on ${later.slice(0, 10)}`);
  }
});

t.test('migration 0013 dates the challenges cancelled before it by their cancellation', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, circle } = await openCircle(app);
  const zone = { timezone: 'America/New_York', dayStartsAt: 120 };
  // Starting tomorrow, so the challenges stay valid if the day turns while the test runs.
  const startsOn = addDays(challengeDayAt(Date.now(), zone.timezone, zone.dayStartsAt), 1);
  const rules = { ...zone, startsOn, endsOn: addDays(startsOn, 5) };
  const [byEvent, byUpdate, ended, running] = [
    await createChallenge(app, owner, circle.id, rules),
    await createChallenge(app, owner, circle.id, rules),
    await createChallenge(app, owner, circle.id, { ...rules, endsOn: startsOn }),
    await createChallenge(app, owner, circle.id, rules),
  ];
  for (const c of [byEvent, byUpdate, ended]) {
    const cancel = await call(app, 'POST', `/v1/challenges/${c.id}/cancel`, { token: owner.token, body: {} });
    t.equal(cancel.status, 200);
  }
  // The instants the backfill reads, placed by the zone's own rule so that they hold in summer
  // and winter time alike: half an hour before the third day starts (01:30 local, the 2 h day
  // start not reached yet: still the second day), and five hours into the fourth day.
  const dayStart = (day: string) => challengeDayStart(day, zone.timezone, zone.dayStartsAt).getTime();
  const at = (ms: number) => new Date(ms).toISOString();
  await sql`UPDATE events SET created_at = ${at(dayStart(addDays(startsOn, 2)) - 30 * 60_000)}::timestamptz
    WHERE type = 'challenge.cancelled' AND subject_id IN (${byEvent.id}::uuid, ${ended.id}::uuid)`.execute(db);
  await sql`DELETE FROM events WHERE type = 'challenge.cancelled' AND subject_id = ${byUpdate.id}::uuid`.execute(db);
  await sql`UPDATE challenges SET updated_at = ${at(dayStart(addDays(startsOn, 3)) + 5 * 3_600_000)}::timestamptz`.execute(
    db,
  );

  await challengeCancelledOn.down(db);
  await challengeCancelledOn.up(db);
  const rows = await db.selectFrom('challenges').select(['id', 'cancelled_on']).execute();
  const dayOf = new Map(rows.map((r) => [r.id, r.cancelled_on]));
  t.equal(dayOf.get(byEvent.id), addDays(startsOn, 1), 'the day of its cancellation event, in its zone and day start');
  t.equal(dayOf.get(byUpdate.id), addDays(startsOn, 3), 'without the event, the day of its last update');
  t.equal(dayOf.get(ended.id), startsOn, 'never after its last day');
  t.equal(dayOf.get(running.id), null, 'a running challenge has none');
});
