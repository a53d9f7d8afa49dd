import t from 'tap';
import { sql } from 'kysely';
import { storedJobId } from '../../src/jobs/queues.js';
import { closeChallengeIfDue } from '../../src/challenges/challenge-closing.js';
import { challengeClosingProcessor, closingJobKey } from '../../src/challenges/challenge-closing.job.js';
import { noticeMissedDays } from '../../src/challenges/missed-days.js';
import type { Db } from '../../src/infra/postgres.js';
import { buildTestApp, call, onEachQueueBackend, queueBackendEnv } from '../helper.js';
import { finishedJob, processorWorkers } from '../marketplace-helpers.js';
import { checkIn, clockAt, createChallenge, openCircle, relogin } from '../challenge-helpers.js';
import { assertInvariants } from '../settlement-helpers.js';

// Closing a challenge when its last day ends: the delayed job scheduled at creation, exactly once
// under duplicate delivery and racing sweeps, with its summary event; and the daily notices of a
// day missed while a streak was alive.

const LONG_TOKENS = { ACCESS_TOKEN_TTL_SECONDS: '86400' };
const DAY = 86_400_000;

const closedEvents = (db: Db, challengeId: string) =>
  db
    .selectFrom('events')
    .select(['payload', 'actor_id'])
    .where('type', '=', 'challenge.closed')
    .where('subject_id', '=', challengeId)
    .execute();

onEachQueueBackend(
  t,
  'a challenge past its last day closes once with its summary, however often it is asked',
  async (t, backend) => {
    // Early November 2026: a challenge whose days are over by the database's clock.
    const clock = clockAt(t, '2026-11-01T04:00:00Z');
    const { app, db, config } = await buildTestApp(t, { ...LONG_TOKENS, ...queueBackendEnv(backend) });
    const { owner, circle, members } = await openCircle(app, 3);
    const c = await createChallenge(app, owner, circle.id, {
      startsOn: '2026-11-01',
      endsOn: '2026-11-03',
      timezone: 'Asia/Shanghai',
      makeUpAllowance: 1,
    });
    t.equal(c.endsAt, '2026-11-03T16:00:00.000Z', 'midnight after 3 November in Shanghai');
    const [ann, ben, cat] = members;
    for (let day = 0; day < 3; day++) {
      const a = await relogin(app, ann!);
      t.equal((await checkIn(app, a, c.id)).status, 201);
      if (day !== 1) t.equal((await checkIn(app, await relogin(app, ben!), c.id)).status, 201);
      if (day === 2) t.equal((await checkIn(app, await relogin(app, cat!), c.id, { date: '2026-11-02' })).status, 201);
      clock.advance(DAY);
    }
    // The job scheduled at creation, for the end of the last day.
    const scheduled = await app.queues
      .get('challenge-closing')
      .getJob(storedJobId(closingJobKey(c.id, new Date(c.endsAt))));
    t.ok(scheduled, 'creating the challenge scheduled its closing');
    t.same(scheduled?.data, { challengeId: c.id });
    clock.restore();

    const attempts = await Promise.all([1, 2, 3, 4].map(() => closeChallengeIfDue(db, c.id)));
    t.same(attempts.filter(Boolean).length, 1, 'one of four simultaneous closings closed it');
    const events = await closedEvents(db, c.id);
    t.equal(events.length, 1);
    t.same(events[0]!.payload, {
      title: 'Daily reading',
      startsOn: '2026-11-01',
      endsOn: '2026-11-03',
      participants: 3,
      checkins: 6,
      makeUps: 1,
      longestStreaks: [
        { userId: ann!.id, handle: ann!.handle, bestStreak: 3, checkins: 3 },
        { userId: ben!.id, handle: ben!.handle, bestStreak: 1, checkins: 2 },
        { userId: cat!.id, handle: cat!.handle, bestStreak: 1, checkins: 1 },
      ],
    });
    const row = await db
      .selectFrom('challenges')
      .select(['status', 'closed_at'])
      .where('id', '=', c.id)
      .executeTakeFirstOrThrow();
    t.equal(row.status, 'closed');
    t.ok(row.closed_at);

    // Delivered again by BullMQ (another id for the same challenge, and the original one): nothing more.
    const queues = await processorWorkers(t, db, config);
    await queues.add('challenge-closing', { challengeId: c.id }, { jobId: 'challenge-closing:again' });
    const again = await finishedJob(queues.get('challenge-closing'), storedJobId('challenge-closing:again'));
    t.same(again.returnvalue, { closed: false });
    t.equal((await closedEvents(db, c.id)).length, 1, 'still one summary');
    const view = await call(app, 'GET', `/v1/challenges/${c.id}`, { token: (await relogin(app, ann!)).token });
    t.match(view.body, { status: 'closed', me: { checkins: 3, streak: { current: 3, best: 3 } } });
    t.match((await checkIn(app, await relogin(app, ann!), c.id)).body, { code: 'challenge_ended' });
    await assertInvariants(t, db);
  },
  { sequential: true },
);

onEachQueueBackend(
  t,
  'the delayed job closes on time; the sweep closes what a lost job missed; bad payloads fail for good',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const { owner, circle } = await openCircle(app, 0);
    // Ends a few seconds from now: the last day of a zone whose midnight is near is hard to pick,
    // so the end is set in the database and the job scheduled as the service would.
    const today = new Date().toISOString().slice(0, 10);
    const soon = await createChallenge(app, owner, circle.id, { startsOn: today, endsOn: today, timezone: 'UTC' });
    const endsAt = new Date(Date.now() + 1500);
    await db.updateTable('challenges').set({ ends_at: endsAt }).where('id', '=', soon.id).execute();
    const lost = await createChallenge(app, owner, circle.id, { startsOn: today, endsOn: today, timezone: 'UTC' });
    await db
      .updateTable('challenges')
      .set({ ends_at: new Date(Date.now() - 1000) })
      .where('id', '=', lost.id)
      .execute();

    const queues = await processorWorkers(t, db, config);
    await queues.add(
      'challenge-closing',
      { challengeId: soon.id },
      { jobId: closingJobKey(soon.id, endsAt), delay: 1500 },
    );
    const job = await finishedJob(queues.get('challenge-closing'), storedJobId(closingJobKey(soon.id, endsAt)));
    t.same(job.returnvalue, { closed: true });
    t.ok(job.processedOn! >= endsAt.getTime() - 50, 'not before the end');
    t.equal((await closedEvents(db, soon.id)).length, 1);

    await queues.add('maintenance', { task: 'close-ended-challenges' }, { jobId: 'sweep:1' });
    t.same((await finishedJob(queues.get('maintenance'), 'sweep_1')).returnvalue, { closed: 1 }, 'the lost one');
    t.equal((await closedEvents(db, lost.id)).length, 1);
    await queues.add('maintenance', { task: 'close-ended-challenges' }, { jobId: 'sweep:2' });
    t.same((await finishedJob(queues.get('maintenance'), 'sweep_2')).returnvalue, { closed: 0 });

    await queues.add('challenge-closing', { challengeId: 'not-an-id' }, { jobId: 'bogus' });
    const bogus = await finishedJob(queues.get('challenge-closing'), 'bogus');
    t.match(bogus.failedReason, /invalid challenge id/);
    t.equal(bogus.attemptsMade, 1, 'not retried');
  },
);

t.test('a closing job run a little before the last day ends by the database clock waits for it', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, circle } = await openCircle(app, 1);
  const today = new Date().toISOString().slice(0, 10);
  const challenge = await createChallenge(app, owner, circle.id, { startsOn: today, endsOn: today, timezone: 'UTC' });
  // Its end two seconds ahead by the database's clock, as a worker running ahead would see it come.
  await db
    .updateTable('challenges')
    .set({ ends_at: sql<Date>`now() + interval '2 seconds'` })
    .where('id', '=', challenge.id)
    .execute();
  const ctx = { db, queues: app.queues, config: app.config, log: app.log };
  t.same(
    await challengeClosingProcessor({ challengeId: challenge.id }, ctx, undefined as never),
    { closed: true },
    'closed at its end, not left to the sweep',
  );
  await assertInvariants(t, db);
});

t.test('a day missed while a streak was alive: one notice per member and day, kept by a freeze or not', async (t) => {
  const clock = clockAt(t, '2026-11-01T04:00:00Z');
  const { app, db } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, members } = await openCircle(app, 4);
  const c = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-11-01',
    endsOn: '2026-11-10',
    timezone: 'Asia/Shanghai',
    freezesPerMember: 1,
  });
  const [ann, ben, cat] = members;
  const schedule: [typeof ann, number[]][] = [
    [ann, [0, 1]],
    [ben, [0]],
    [cat, [0, 1, 2]],
  ];
  for (let day = 0; day < 3; day++) {
    for (const [who, days] of schedule)
      if (days.includes(day)) t.equal((await checkIn(app, await relogin(app, who!), c.id)).status, 201);
    clock.advance(DAY);
  }
  clock.restore();
  const notices = async () =>
    (
      await db
        .selectFrom('events')
        .select(['payload', 'circle_id', 'subject_id'])
        .where('type', '=', 'challenge.day_missed')
        .orderBy('id')
        .execute()
    ).map((e) => e.payload as Record<string, unknown>);
  const name = (id: unknown) => ['ann', 'ben', 'cat', 'dan'][members.findIndex((m) => m.id === id)];

  // Noon on 4 November in Shanghai: yesterday, 3 November, ann and ben did not check in.
  t.equal(await noticeMissedDays(db, Date.parse('2026-11-04T04:00:00Z')), 2);
  t.same(
    (await notices()).map((p) => [name(p.userId), p.localDate, p.streak, p.streakKept, p.freezesLeft]).sort(),
    [
      ['ann', '2026-11-03', 2, true, 0],
      ['ben', '2026-11-03', 1, false, 0],
    ].sort(),
    "ann's freeze keeps her streak; ben's was spent on 2 November and his streak ends",
  );
  t.equal(await noticeMissedDays(db, Date.parse('2026-11-04T10:00:00Z')), 0, 'once per day');
  const all = await Promise.all([1, 2, 3].map(() => noticeMissedDays(db, Date.parse('2026-11-05T04:00:00Z'))));
  t.equal(
    all.reduce((a, b) => a + b, 0),
    2,
    'racing sweeps announce 4 November once',
  );
  t.same(
    (await notices())
      .slice(2)
      .map((p) => [name(p.userId), p.localDate, p.streakKept])
      .sort(),
    [
      ['ann', '2026-11-04', false],
      ['cat', '2026-11-04', true],
    ],
    "ben's streak was already over: no notice",
  );
  const first = await db
    .selectFrom('events')
    .select(['circle_id', 'subject_id'])
    .where('type', '=', 'challenge.day_missed')
    .executeTakeFirstOrThrow();
  t.same(first, { circle_id: circle.id, subject_id: c.id });

  // The notices are personal: in each member's inbox, not in the circle's feed.
  const annInbox = await call(app, 'GET', '/v1/me/events', { token: (await relogin(app, ann!)).token });
  t.same(
    annInbox.body.items
      .filter((e: { type: string }) => e.type === 'challenge.day_missed')
      .map((e: { summary: string }) => e.summary),
    [
      `${ann!.handle} missed 2026-11-04 of a challenge while on a streak of 2`,
      `${ann!.handle} missed 2026-11-03 of a challenge; a freeze kept the streak alive`,
    ],
    "ann's inbox, newest first",
  );
  const feed = await call(app, 'GET', `/v1/circles/${circle.id}/events`, { token: (await relogin(app, owner)).token });
  t.notOk(
    feed.body.items.some((e: { type: string }) => e.type === 'challenge.day_missed'),
    'not in the circle feed',
  );
});

t.test('the last day is announced after the challenge closed; a cancelled challenge is not', async (t) => {
  const clock = clockAt(t, '2026-11-01T04:00:00Z');
  const { app, db } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, members } = await openCircle(app, 2);
  const [ann, ben] = members;
  const rules = { startsOn: '2026-11-01', endsOn: '2026-11-03', timezone: 'Asia/Shanghai' };
  const closing = await createChallenge(app, owner, circle.id, rules);
  const cancelled = await createChallenge(app, owner, circle.id, rules);
  // Both check in on the first two days of both; on the last day only ben checks in.
  for (let day = 0; day < 3; day++) {
    const a = await relogin(app, ann!);
    const b = await relogin(app, ben!);
    if (day < 2) for (const c of [closing, cancelled]) t.equal((await checkIn(app, a, c.id)).status, 201);
    t.equal((await checkIn(app, b, closing.id)).status, 201);
    if (day < 2) t.equal((await checkIn(app, b, cancelled.id)).status, 201);
    if (day === 2) {
      const cancel = await call(app, 'POST', `/v1/challenges/${cancelled.id}/cancel`, {
        token: (await relogin(app, owner)).token,
        body: { reason: 'Called off on its last day' },
      });
      t.equal(cancel.status, 200);
    }
    clock.advance(DAY);
  }
  clock.restore();
  // The closing job runs at the end of the last day, before the sweep's first pass of 4 November.
  t.equal(await closeChallengeIfDue(db, closing.id), true, 'closed at the end of 3 November');
  const notices = () =>
    db
      .selectFrom('events')
      .select(['subject_id', 'recipient_id', 'payload'])
      .where('type', '=', 'challenge.day_missed')
      .execute();

  t.equal(await noticeMissedDays(db, Date.parse('2026-11-04T04:00:00Z')), 1, "ann's missed last day");
  t.same(await notices(), [
    {
      subject_id: closing.id,
      recipient_id: ann!.id,
      payload: {
        userId: ann!.id,
        challengeId: closing.id,
        localDate: '2026-11-03',
        streak: 2,
        streakKept: false,
        freezesLeft: 0,
      },
    },
  ]);
  t.equal(await noticeMissedDays(db, Date.parse('2026-11-04T10:00:00Z')), 0, 'once');
  t.equal(await noticeMissedDays(db, Date.parse('2026-11-05T04:00:00Z')), 0, 'nothing after the last day');
  t.equal((await notices()).length, 1, 'the cancelled challenge announced nothing');
  const row = await db
    .selectFrom('challenges')
    .select(['status', 'missed_days_noticed_through'])
    .where('id', '=', closing.id)
    .executeTakeFirstOrThrow();
  t.same(row, { status: 'closed', missed_days_noticed_through: '2026-11-03' });
  await assertInvariants(t, db);
});

t.test('a member who left gets no missed-day notice and is not named in the closing summary', async (t) => {
  const clock = clockAt(t, '2026-11-01T04:00:00Z');
  const { app, db } = await buildTestApp(t, LONG_TOKENS);
  const { owner, circle, members } = await openCircle(app, 2);
  const [ann, ben] = members;
  const c = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-11-01',
    endsOn: '2026-11-02',
    timezone: 'Asia/Shanghai',
  });
  // Both check in on the first day.
  for (const who of [ann, ben]) t.equal((await checkIn(app, await relogin(app, who!), c.id)).status, 201);
  const left = await call(app, 'DELETE', `/v1/circles/${circle.id}/members/${ann!.id}`, {
    token: (await relogin(app, ann!)).token,
  });
  t.equal(left.status, 204, 'ann leaves the circle');
  clock.restore();

  // Noon on 3 November in Shanghai: both missed 2 November with a streak alive; ann is gone.
  t.equal(await noticeMissedDays(db, Date.parse('2026-11-03T04:00:00Z')), 1);
  t.same(
    (await db.selectFrom('events').select('recipient_id').where('type', '=', 'challenge.day_missed').execute()).map(
      (e) => e.recipient_id,
    ),
    [ben!.id],
    'only the member still in the circle is told',
  );

  t.equal(await closeChallengeIfDue(db, c.id), true);
  const [closed] = await closedEvents(db, c.id);
  t.match(closed!.payload, { participants: 2, checkins: 2 }, 'the totals count what happened');
  t.same(
    (closed!.payload as { longestStreaks: { userId: string }[] }).longestStreaks.map((s) => s.userId),
    [ben!.id],
    'the streaks it names are of members, as on the leaderboard',
  );
});
