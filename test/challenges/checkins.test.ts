import t from 'tap';
import { sql } from 'kysely';
import { assertInvariants } from '../settlement-helpers.js';
import { buildTestApp, call, isProblem, type Reply } from '../helper.js';
import { backendPid, lockWaiterCount, waitUntilBlockedBy } from '../lock-waits.js';
import { joinMembers, waitFor } from '../marketplace-helpers.js';
import { addDays } from '../../src/challenges/challenge-days.js';
import { checkIn, clockAt, createChallenge, openCircle, relogin } from '../challenge-helpers.js';
import { rowCounts } from '../hostile/world.js';

// Check-ins over HTTP with the server's clock set by the test: the day around local midnight east
// and west of UTC, with a day start, across DST changes; make-ups and freezes; duplicate content;
// ten simultaneous check-ins; the points they write. The day arithmetic itself is covered
// instant by instant in challenge-days.test.ts.

const DAY = 86_400_000;
// Access tokens that outlive the clock moves of a test (at most a day; past that, relogin).
const LONG_TOKENS = { ACCESS_TOKEN_TTL_SECONDS: '86400' };

t.test('around local midnight in Pacific/Kiritimati (UTC+14), across the year end', async (t) => {
  const clock = clockAt(t, '2025-12-31T09:59:30Z'); // 23:59:30 on 31 December there
  const { app } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, member } = await openCircle(app);
  const c = await createChallenge(app, owner, circle.id, {
    startsOn: '2025-12-31',
    endsOn: '2026-01-06',
    timezone: 'Pacific/Kiritimati',
  });
  t.equal(c.today, '2025-12-31');
  const before = await checkIn(app, member, c.id);
  t.equal(before.status, 201, JSON.stringify(before.body));
  t.match(before.body, { localDate: '2025-12-31', streak: { current: 1, best: 1 }, points: 10, makeUp: false });
  clock.advance(60_000); // 00:00:30 on 1 January there, 10:00:30 UTC on 31 December
  const after = await checkIn(app, member, c.id);
  t.match(after.body, { localDate: '2026-01-01', streak: { current: 2, best: 2 }, checkins: 2 });
});

t.test('around local midnight in Pacific/Pago_Pago (UTC-11), across a month end', async (t) => {
  const clock = clockAt(t, '2026-02-01T10:59:30Z'); // 23:59:30 on 31 January there
  const { app } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, member } = await openCircle(app);
  const c = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-01-31',
    endsOn: '2026-02-05',
    timezone: 'Pacific/Pago_Pago',
  });
  t.match((await checkIn(app, member, c.id)).body, { localDate: '2026-01-31', streak: { current: 1 } });
  clock.advance(60_000);
  t.match((await checkIn(app, member, c.id)).body, { localDate: '2026-02-01', streak: { current: 2 } });
});

t.test('dayStartsAt 120: 01:30 counts for the day before, 02:00 begins the next', async (t) => {
  const clock = clockAt(t, '2026-05-09T17:30:00Z'); // 01:30 on 10 May in Shanghai
  const { app } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, member } = await openCircle(app);
  const c = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-05-09',
    endsOn: '2026-05-20',
    timezone: 'Asia/Shanghai',
    dayStartsAt: 120,
  });
  t.equal(c.startsAt, '2026-05-08T18:00:00.000Z', 'the first day begins at 02:00 local');
  t.match((await checkIn(app, member, c.id)).body, { localDate: '2026-05-09' });
  const again = await checkIn(app, member, c.id);
  t.ok(isProblem(again, 409, 'already_checked_in'), 'still 9 May');
  clock.set('2026-05-09T18:00:00Z');
  t.match((await checkIn(app, member, c.id)).body, { localDate: '2026-05-10', streak: { current: 2 } });
});

t.test('across DST: New York in March (day start 120) and Lord Howe in October (half an hour)', async (t) => {
  const clock = clockAt(t, '2026-03-08T06:59:30Z'); // 01:59:30 EST; 02:00 does not happen that night
  const { app } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, member } = await openCircle(app);
  const ny = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-03-07',
    endsOn: '2026-03-10',
    timezone: 'America/New_York',
    dayStartsAt: 120,
  });
  t.match((await checkIn(app, member, ny.id)).body, { localDate: '2026-03-07' });
  clock.advance(60_000); // 03:00:30 EDT: two real hours after midnight
  t.match((await checkIn(app, member, ny.id)).body, { localDate: '2026-03-08', streak: { current: 2 } });

  clock.set('2026-10-03T13:29:30Z'); // 23:59:30 +10:30 on 3 October in Lord Howe
  const fresh = await relogin(app, member);
  const owner2 = await relogin(app, owner);
  const lh = await createChallenge(app, owner2, circle.id, {
    startsOn: '2026-10-03',
    endsOn: '2026-10-05',
    timezone: 'Australia/Lord_Howe',
  });
  t.match((await checkIn(app, fresh, lh.id)).body, { localDate: '2026-10-03' });
  clock.advance(60_000);
  t.match((await checkIn(app, fresh, lh.id)).body, { localDate: '2026-10-04' });
  // That day has 23.5 hours: 23:59:30 +11 is 12:59:30 UTC on 4 October.
  clock.set('2026-10-04T12:59:30Z');
  t.ok(isProblem(await checkIn(app, fresh, lh.id), 409, 'already_checked_in'), 'still 4 October');
  clock.advance(60_000);
  t.match((await checkIn(app, fresh, lh.id)).body, { localDate: '2026-10-05', streak: { current: 3 } });
});

t.test('make-ups fill a missed day from an allowance; freezes bridge; every refusal changes nothing', async (t) => {
  const clock = clockAt(t, '2026-06-11T04:00:00Z'); // noon on 11 June in Shanghai
  const { app, db } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, member } = await openCircle(app);
  const c = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-06-01',
    endsOn: '2026-06-30',
    timezone: 'Asia/Shanghai',
    makeUpAllowance: 1,
    makeUpWindowDays: 3,
    freezesPerMember: 1,
  });
  let m = member;
  t.match((await checkIn(app, m, c.id)).body, {
    localDate: '2026-06-11',
    streak: { current: 1, best: 1 },
    makeUpsLeft: 1,
    freezesLeft: 1,
  });
  clock.advance(2 * DAY); // 13 June: 12 June was missed
  m = await relogin(app, m);
  t.match(
    (await checkIn(app, m, c.id)).body,
    { localDate: '2026-06-13', streak: { current: 2, best: 2 }, freezesLeft: 0 },
    'the freeze bridged 12 June, which counts nothing itself',
  );
  const counts = await rowCounts(db);
  const refusals: [Record<string, unknown>, number, string][] = [
    [{ date: '2026-06-14' }, 400, 'checkin_date_in_future'],
    [{ date: '2026-06-09' }, 409, 'makeup_window_passed'],
    [{ date: '2026-06-13' }, 409, 'already_checked_in'],
    [{ date: '2026-06-11' }, 409, 'already_checked_in'],
    [{ date: '2026-02-30' }, 400, 'invalid_request'],
    [{ date: '13/06/2026' }, 400, 'invalid_request'],
  ];
  for (const [body, status, code] of refusals)
    t.ok(isProblem(await checkIn(app, m, c.id, body), status, code), `${JSON.stringify(body)}: ${code}`);
  t.same(await rowCounts(db), counts, 'refused check-ins changed nothing');

  const madeUp = await checkIn(app, m, c.id, { date: '2026-06-12' });
  t.equal(madeUp.status, 201);
  t.match(
    madeUp.body,
    {
      localDate: '2026-06-12',
      makeUp: true,
      points: 10,
      streak: { current: 3, best: 3 },
      makeUpsLeft: 0,
      freezesLeft: 1,
    },
    'the make-up fills 12 June: three days in a row, and the freeze is free again',
  );
  t.ok(isProblem(await checkIn(app, m, c.id, { date: '2026-06-10' }), 409, 'no_makeups_left'));

  clock.advance(3 * DAY); // 16 June: 14 June frozen, 15 June missed
  m = await relogin(app, m);
  const detail = await call(app, 'GET', `/v1/challenges/${c.id}`, { token: m.token });
  t.match(detail.body.me, {
    checkins: 3,
    checkedInToday: false,
    streak: { current: 0, best: 3 },
    makeUpsLeft: 0,
    freezesLeft: 0,
  });
  t.match((await checkIn(app, m, c.id)).body, { streak: { current: 1, best: 3 } });

  const own = await call(app, 'GET', `/v1/challenges/${c.id}/checkins?limit=2`, { token: m.token });
  t.same(
    own.body.items.map((i: { localDate: string }) => i.localDate),
    ['2026-06-16', '2026-06-13'],
  );
  const rest = await call(app, 'GET', `/v1/challenges/${c.id}/checkins?cursor=${own.body.nextCursor}`, {
    token: m.token,
  });
  t.same(
    rest.body.items.map((i: { localDate: string }) => i.localDate),
    ['2026-06-12', '2026-06-11'],
  );
  t.equal(rest.body.nextCursor, null);
  const ownersView = await call(app, 'GET', `/v1/challenges/${c.id}/checkins`, {
    token: (await relogin(app, owner)).token,
  });
  t.same(ownersView.body.items, [], "the list is the caller's own");
  const forged = Buffer.from(JSON.stringify(['not-a-date'])).toString('base64url');
  t.ok(
    isProblem(
      await call(app, 'GET', `/v1/challenges/${c.id}/checkins?cursor=${forged}`, { token: m.token }),
      400,
      'invalid_cursor',
    ),
  );
});

t.test('content: normalized duplicates, the minimum length, one check-in per day', async (t) => {
  const clock = clockAt(t, '2026-07-01T04:00:00Z');
  const { app, db } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, member, members } = await openCircle(app, 2);
  const c = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-07-01',
    endsOn: '2026-07-10',
    timezone: 'Asia/Shanghai',
    minContentLength: 8,
  });
  const counts = await rowCounts(db);
  t.ok(isProblem(await checkIn(app, member, c.id, { content: '  short  ' }), 400, 'content_too_short'));
  t.ok(
    isProblem(await checkIn(app, member, c.id, { content: '慢慢来，比较' }), 400, 'content_too_short'),
    '6 characters',
  );
  t.same(await rowCounts(db), counts);
  t.equal((await checkIn(app, member, c.id, { content: 'Slow down,  it is FASTER.' })).status, 201);
  t.ok(isProblem(await checkIn(app, member, c.id), 409, 'already_checked_in'));
  clock.advance(DAY);
  const m = await relogin(app, member);
  const dup = await checkIn(app, m, c.id, { content: ' slow DOWN, it is ｆａｓｔｅｒ. ' });
  t.ok(isProblem(dup, 409, 'duplicate_content'), 'the same words, other case, spacing and width');
  t.equal(
    (await checkIn(app, await relogin(app, members[1]!), c.id, { content: 'Slow down, it is faster.' })).status,
    201,
    'another member may post the same passage',
  );
  t.equal((await checkIn(app, m, c.id, { content: 'Slow down, it is faster!' })).status, 201, 'other words');
});

t.test('ten simultaneous check-ins of one member: exactly one 201, the others already_checked_in', async (t) => {
  clockAt(t, '2026-08-01T04:00:00Z');
  const { app, db } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, member } = await openCircle(app);
  const c = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-08-01',
    endsOn: '2026-08-31',
    timezone: 'Asia/Shanghai',
    pointsPerCheckin: 25,
  });
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) => checkIn(app, member, c.id, { content: `Attempt ${i} of today's reading` })),
  );
  const statuses = results.map((r) => r.status).sort();
  t.same(statuses, [201, ...Array(9).fill(409)]);
  t.ok(
    results.filter((r) => r.status === 409).every((r) => r.body.code === 'already_checked_in'),
    'every loser is told why',
  );
  const rows = await db.selectFrom('checkins').selectAll().execute();
  t.equal(rows.length, 1);
  const points = await db.selectFrom('contributions').selectAll().where('source', '=', 'checkin').execute();
  t.match(points, [
    { user_id: member.id, circle_id: circle.id, project_id: null, points: 25, checkin_id: rows[0]!.id },
  ]);
  const participant = await db.selectFrom('challenge_participants').selectAll().executeTakeFirstOrThrow();
  t.match(participant, { checkins: 1, run: 1, best_streak: 1, last_date: '2026-08-01' });
  const events = await db
    .selectFrom('events')
    .select(['type', 'subject_id', 'payload'])
    .where('type', '=', 'checkin.recorded')
    .execute();
  t.match(events, [
    { subject_id: rows[0]!.id, payload: { challengeId: c.id, userId: member.id, localDate: '2026-08-01' } },
  ]);
  await assertInvariants(t, db);
});

t.test('check-ins need a running challenge the caller belongs to', async (t) => {
  const clock = clockAt(t, '2026-09-01T04:00:00Z');
  const { app } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, member, outsider } = await openCircle(app);
  const later = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-09-05',
    endsOn: '2026-09-06',
    timezone: 'Asia/Shanghai',
  });
  t.ok(isProblem(await checkIn(app, member, later.id), 409, 'challenge_not_started'));
  t.ok(isProblem(await checkIn(app, outsider, later.id), 404, 'challenge_not_found'));
  t.ok(isProblem(await checkIn(app, member, '00000000-0000-4000-8000-000000000000'), 404, 'challenge_not_found'));
  clock.set('2026-09-06T15:59:00Z'); // 23:59 on the last day
  const m = await relogin(app, member);
  t.equal((await checkIn(app, m, later.id)).status, 201, 'the last minute of the last day');
  clock.advance(2 * 60_000);
  t.ok(isProblem(await checkIn(app, await relogin(app, owner), later.id), 409, 'challenge_ended'));
});

t.test('a make-up fills only days since the member joined the circle', async (t) => {
  // The real clock: the database stamps joined_at with it, and the check-in reads the day from it.
  const { app, db } = await buildTestApp(t);
  const { owner, circle } = await openCircle(app);
  const [newcomer] = await joinMembers(app, circle.id, 1);
  const today = new Date().toISOString().slice(0, 10);
  const challenge = await createChallenge(app, owner, circle.id, {
    startsOn: addDays(today, -3),
    endsOn: addDays(today, 3),
    timezone: 'UTC',
    makeUpAllowance: 2,
  });
  const yesterday = addDays(today, -1);
  const before = await rowCounts(db);
  const refused = await checkIn(app, newcomer!, challenge.id, { date: yesterday });
  t.ok(isProblem(refused, 409, 'date_before_joining'), `yesterday was before they joined (${refused.body?.code})`);
  t.same(await rowCounts(db), before, 'nothing written');
  t.equal((await checkIn(app, newcomer!, challenge.id)).status, 201, 'today is theirs');

  // A member since two days ago may make up yesterday.
  await db
    .updateTable('memberships')
    .set({ joined_at: sql<Date>`now() - interval '2 days'` })
    .where('circle_id', '=', circle.id)
    .where('user_id', '=', newcomer!.id)
    .execute();
  t.equal(
    (await checkIn(app, newcomer!, challenge.id, { date: yesterday, content: 'Read it yesterday, late.' })).status,
    201,
  );
  await assertInvariants(t, db);
});

t.test('a check-in in flight when its member leaves commits before the departure, or is refused', async (t) => {
  clockAt(t, '2026-09-01T04:00:00Z');
  const { app, db } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, member } = await openCircle(app);
  const c = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-09-01',
    endsOn: '2026-09-07',
    timezone: 'Asia/Shanghai',
  });

  // The test holds the member's participant row (an insert not yet committed), so the check-in
  // waits inside its transaction, past the point where it read the membership. The member leaves
  // meanwhile. Without a lock on the membership the departure commits at once, and the check-in
  // after it: a check-in, and its points, of someone no longer in the circle.
  let checkingIn!: Promise<Reply>;
  let leaving!: Promise<Reply>;
  const rolledBack = new Error('the hold is let go');
  await db
    .transaction()
    .execute(async (trx) => {
      await sql`INSERT INTO challenge_participants (challenge_id, user_id, circle_id)
        VALUES (${c.id}::uuid, ${member.id}::uuid, ${circle.id}::uuid)`.execute(trx);
      checkingIn = checkIn(app, member, c.id);
      await waitUntilBlockedBy(db, await backendPid(trx));
      let left = false;
      leaving = call(app, 'DELETE', `/v1/circles/${circle.id}/members/${member.id}`, { token: member.token }).finally(
        () => {
          left = true;
        },
      );
      // The departure either returns or queues behind the check-in.
      t.ok(await waitFor(async () => left || (await lockWaiterCount(db)) >= 2, 20_000, 10));
      throw rolledBack;
    })
    .catch((err: unknown) => {
      if (err !== rolledBack) throw err;
    });
  const [checkedIn, departed] = await Promise.all([checkingIn, leaving]);
  t.equal(departed.status, 204, 'the member left');
  const stored = await db.selectFrom('checkins').select('id').where('user_id', '=', member.id).execute();
  if (checkedIn.status === 201) {
    // Event ids are handed out as the rows are written: the departure wrote its event only once
    // the check-in had committed, or before it, while the check-in waited on the test.
    const [recorded, departure] = await Promise.all(
      ['checkin.recorded', 'member.left'].map(
        async (type) =>
          (await db.selectFrom('events').select('id').where('type', '=', type).executeTakeFirstOrThrow()).id,
      ),
    );
    t.ok(Number(recorded) < Number(departure), 'the departure waited for the check-in');
    t.equal(stored.length, 1);
  } else {
    t.ok(isProblem(checkedIn, 404, 'challenge_not_found'), 'or the check-in found no member');
    t.equal(stored.length, 0, 'and stored nothing');
  }
  await assertInvariants(t, db);
});
