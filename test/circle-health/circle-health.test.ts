import t, { type Test } from 'tap';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Db } from '../../src/infra/postgres.js';
import { addMember, buildTestApp, call, createCircle, isProblem, registerUser, type TestUser } from '../helper.js';
import { addTasks, claimTask, createProject, joinMembers, submitWork } from '../marketplace-helpers.js';
import { checkIn, createChallenge, membersSinceLongAgo } from '../challenge-helpers.js';
import { foldCircleRollups } from '../../src/circle-health/rollup-fold.js';

// GET /v1/circles/:id/health on a constructed circle: activity written straight into the database
// at chosen local days of the circle's zone (the test's control of time), and the figures worked
// out by hand below. The same circle as test/circle-health/figures.test.ts, seen through the API.

const ZONE = 'Asia/Shanghai';

/** The instant `hour` o'clock on the local day `daysAgo` days before today, in ZONE. */
const localTime = (daysAgo: number, hour: number) =>
  sql`(((now() AT TIME ZONE ${ZONE})::date - ${daysAgo}::int)::timestamp + make_interval(hours => ${hour})) AT TIME ZONE ${ZONE}`;

/** Activity on a local day: a claim made then (released since, holding nothing). */
async function claimedOn(db: Db, taskId: string, userId: string, daysAgo: number) {
  await sql`
    INSERT INTO claims (circle_id, project_id, task_id, user_id, status, expires_at, lease_started_at, created_at, updated_at)
    SELECT circle_id, project_id, id, ${userId}, 'released', ${localTime(daysAgo, 2)}, ${localTime(daysAgo, 1)},
           ${localTime(daysAgo, 1)}, ${localTime(daysAgo, 2)}
    FROM tasks WHERE id = ${taskId}`.execute(db);
}

/**
 * Points earned on a local day: an owner's adjustment (positive as an award, negative as a
 * correction). The figures count points of every source alike; check-in rows need a check-in
 * behind them (contributions_checkin_source), which the challenge tests write through the API.
 */
async function pointsOn(db: Db, circleId: string, userId: string, points: number, daysAgo: number) {
  await sql`
    INSERT INTO contributions (circle_id, user_id, source, points, reason, created_at)
    VALUES (${circleId}, ${userId}, 'adjustment', ${points}, ${points < 0 ? 'correction' : 'award'},
            ${localTime(daysAgo, 1)})`.execute(db);
}

/** A claim made on one local day and first submitted on a later one (hours after it). */
async function submittedAfter(db: Db, taskId: string, userId: string, daysAgo: number, hours: number) {
  await sql`
    WITH claim AS (
      INSERT INTO claims (circle_id, project_id, task_id, user_id, status, expires_at, lease_started_at, created_at, updated_at)
      SELECT circle_id, project_id, id, ${userId}, 'released', ${localTime(daysAgo, 12)} + interval '3 days',
             ${localTime(daysAgo, 12)}, ${localTime(daysAgo, 12)}, ${localTime(daysAgo, 12)}
      FROM tasks WHERE id = ${taskId}
      RETURNING id, circle_id, user_id, created_at
    )
    INSERT INTO submissions (circle_id, claim_id, user_id, revision, content, review_due_at, created_at)
    SELECT circle_id, id, user_id, 1, 'work', created_at + interval '7 days', created_at + make_interval(hours => ${hours})
    FROM claim`.execute(db);
}

/**
 * The report as the API gives it now (from the source rows, or from rollups plus the rows not
 * folded yet, whichever the circle's state calls for), checked against the report once every row
 * is folded: both ways to the figures must agree.
 */
async function healthChecked(t: Test, app: FastifyInstance, db: Db, circleId: string, token: string, query = '') {
  const path = `/v1/circles/${circleId}/health${query}`;
  const res = await call(app, 'GET', path, { token });
  if (res.status !== 200) return res;
  await foldCircleRollups(db, circleId);
  t.same((await call(app, 'GET', path, { token })).body, res.body, `${path}: the same with every row folded`);
  return res;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

t.test('health figures of a constructed circle, counted in its time zone, match the hand-worked answers', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const zoned = await call(app, 'PATCH', `/v1/circles/${circle.id}`, { token: owner.token, body: { timezone: ZONE } });
  t.equal(zoned.body.timezone, ZONE);
  // Rollups folded before any activity: every row below is the tail a report adds to them.
  t.same(await foldCircleRollups(db, circle.id), { folded: true, rebuilt: true, rows: 0 });
  const [ann, bob, cat, dan, eve, fay, gus, hal, ivy, jon] = (await joinMembers(app, circle.id, 10)) as TestUser[];
  // hal is an admin: admins count as members in every figure; only the owner is left out.
  await call(app, 'PATCH', `/v1/circles/${circle.id}/members/${hal!.id}`, {
    token: owner.token,
    body: { role: 'admin' },
  });
  const project = await createProject(app, owner, circle.id);
  const [task, other, leaf, parent] = await addTasks(app, owner, project.id, [
    { title: 'Old work' },
    { title: 'Other work' },
    { title: 'Leaf' },
    { title: 'Parent', children: [{ title: 'Child' }] },
  ]);
  const taskId = task!.id;

  // Activity per member (days ago, local) and points in the 30-day window:
  for (const d of range(0, 29)) await claimedOn(db, taskId, ann!.id, d); // 30 of 90 days: leading; 7 of 7: seed
  await pointsOn(db, circle.id, ann!.id, 100, 0);
  await claimedOn(db, taskId, bob!.id, 0); // days 0, 1, 2, 3: seed (4 of 7), participating
  await pointsOn(db, circle.id, bob!.id, 80, 1);
  await submittedAfter(db, other!.id, bob!.id, 3, 24); // claimed day 3 noon, submitted day 2 noon: 86400 s
  await submittedAfter(db, taskId, cat!.id, 6, 25); // days 6 and 5 (13:00): 90000 s
  await pointsOn(db, circle.id, cat!.id, 45, 5);
  for (const d of [3, 2]) await claimedOn(db, taskId, cat!.id, d); // cat: days 2, 3, 5, 6: seed, participating
  for (const d of [0, 8, 9, 10, 11, 12, 13]) await claimedOn(db, taskId, dan!.id, d); // 7 of 30: contributing
  await pointsOn(db, circle.id, dan!.id, 40, 0);
  await claimedOn(db, taskId, eve!.id, 7); // days 6, 7: 1 of 7: none
  await pointsOn(db, circle.id, eve!.id, 20, 6);
  for (const d of [7, 40, 89]) await claimedOn(db, taskId, fay!.id, d); // days 7, 8, 40, 89: none
  await pointsOn(db, circle.id, fay!.id, 10, 8);
  for (const d of [90, 91]) await claimedOn(db, taskId, gus!.id, d); // beyond 90 days: not counted
  await pointsOn(db, circle.id, gus!.id, 5, 20); // day 20: active in 30 days, none
  await claimedOn(db, taskId, ivy!.id, 3); // active, no points
  await pointsOn(db, circle.id, jon!.id, -7, 15); // a correction: active, holds nothing
  // hal: nothing at all. The owner is busy, and left out of every member figure:
  for (const d of range(0, 89)) await claimedOn(db, taskId, owner.id, d);
  await pointsOn(db, circle.id, owner.id, 100_000, 0);
  // Older than the window: not in the points (gus would otherwise hold 1000 more)
  await pointsOn(db, circle.id, gus!.id, 1000, 45);

  // Work in flight: the owner claims twice and hands work in, then the clock is set by hand.
  const expiring = await claimTask(app, owner, leaf!.id);
  await sql`UPDATE claims SET expires_at = now() + interval '2 hours' WHERE id = ${expiring.body.id}`.execute(db);
  const [later] = await addTasks(app, owner, project.id, [{ title: 'Later' }]);
  const notYet = await claimTask(app, owner, later!.id);
  await sql`UPDATE claims SET expires_at = now() + interval '30 hours' WHERE id = ${notYet.body.id}`.execute(db);
  const [stale, fresh] = await addTasks(app, owner, project.id, [{ title: 'Stale' }, { title: 'Fresh' }]);
  const staleClaim = await claimTask(app, owner, stale!.id);
  await submitWork(app, owner, staleClaim.body.id);
  // Claimed 51 hours ago, handed in 50 hours ago (3600 s), unreviewed since.
  await sql`UPDATE claims SET created_at = now() - interval '51 hours', updated_at = now() - interval '50 hours' WHERE id = ${staleClaim.body.id}`.execute(
    db,
  );
  await sql`UPDATE submissions SET created_at = now() - interval '50 hours' WHERE claim_id = ${staleClaim.body.id}`.execute(
    db,
  );
  const freshClaim = await claimTask(app, owner, fresh!.id);
  await submitWork(app, owner, freshClaim.body.id);
  await sql`UPDATE claims SET created_at = now() - interval '2 hours' WHERE id = ${freshClaim.body.id}`.execute(db);

  // Completed tasks by local day: days 0, 6 (this week), 7 (last week), 55 (eight weeks back),
  // 56 (nine weeks back: not reported), and a parent finished by roll-up (not counted again).
  for (const d of [0, 6, 7, 55, 56])
    await sql`INSERT INTO events (circle_id, type, subject_id, created_at) VALUES (${circle.id}, 'task.completed', ${leaf!.id}, ${localTime(d, 1)})`.execute(
      db,
    );
  await sql`INSERT INTO events (circle_id, type, subject_id, created_at) VALUES (${circle.id}, 'task.completed', ${parent!.id}, ${localTime(0, 1)})`.execute(
    db,
  );

  const asAdmin = await call(app, 'GET', `/v1/circles/${circle.id}/health`, { token: hal!.token });
  t.equal(asAdmin.status, 200, 'admins read it too');
  t.ok(isProblem(await call(app, 'GET', `/v1/circles/${circle.id}/health`, { token: ann!.token }), 403, 'forbidden'));
  const stranger = await registerUser(app, 'stranger');
  t.ok(isProblem(await call(app, 'GET', `/v1/circles/${circle.id}/health`, { token: stranger.token }), 404));

  // First from the tail (nothing folded since the fold above), then from the rollups alone; the
  // 7-day window below reads them from the rollups.
  const res = await healthChecked(t, app, db, circle.id, owner.token, '?window=30d');
  t.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
  const h = res.body;
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: ZONE, dateStyle: 'short' }).format(new Date());
  const day = (daysAgo: number) =>
    new Date(Date.parse(`${today}T00:00:00Z`) - daysAgo * 86_400_000).toISOString().slice(0, 10);
  t.equal(h.timezone, ZONE);
  t.equal(h.today, today, 'today in Shanghai');
  t.equal(h.windowStart, day(29));
  t.equal(h.members, 10, 'ten members; the owner is not one of the figures');
  // Active in 30 days: all but hal (ivy by a claim, gus and jon by contributions): 9
  t.equal(h.activeMembers, 9);
  t.same(
    h.seedMembers.map((s: { handle: string; activeDays: number }) => [s.handle, s.activeDays]),
    [
      [ann!.handle, 7],
      ...[
        [bob!.handle, 4],
        [cat!.handle, 4],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    ],
    'ann (7 days), then bob and cat (4 days each) by handle',
  );
  // Holdings 100, 80, 45, 40, 20, 10, 5, 0 (hal), 0 (ivy), 0 (jon: -7) of 300:
  t.equal(h.absenceFactor, 2, '100 + 80 = 180 >= 150');
  t.same(h.top20Share, { members: 2, share: 0.6 }, 'ceil(10 / 5) = 2 members hold 180 / 300');
  t.equal(h.gini, 0.6, '(2 * 2550 - 11 * 300) / (10 * 300)');
  t.same(h.engagementLevels, { leading: 1, contributing: 1, participating: 2, none: 6 });
  t.equal(h.expiringClaims, 1, 'one lease ends within 24 hours, the other in 30');
  t.equal(h.staleSubmissions, 1, 'one submission waits over 48 hours');
  // First submissions after 3600 (stale), 7200 (fresh), 86400 (bob), 90000 (cat) seconds
  t.equal(h.medianClaimToSubmissionSeconds, 46_800, 'median: (7200 + 86400) / 2');
  t.same(
    h.weeklyThroughput.map((w: { count: number }) => w.count),
    [1, 0, 0, 0, 0, 0, 1, 2],
    'eight weeks, oldest first',
  );
  t.same(h.weeklyThroughput[7], { from: day(6), to: day(0), count: 2 });
  t.same(h.weeklyThroughput[0], { from: day(55), to: day(49), count: 1 });
  t.same(h.checkinRates, [], 'no challenges');

  // The 7-day window: only points of the last 7 local days count.
  const week = (await healthChecked(t, app, db, circle.id, owner.token, '?window=7d')).body;
  // Active in 7 days: ann, bob, cat, dan, eve (day 6), ivy: 6. Points: 100, 80, 45, 40, 20: 285
  t.equal(week.activeMembers, 6);
  t.equal(week.windowStart, day(6));
  // descending 100, 80 = 180 >= 142.5: 2; top 2 of 285 = 0.6316
  t.equal(week.absenceFactor, 2);
  t.same(week.top20Share, { members: 2, share: 0.6316 });
  // ascending 0 x5, 20, 40, 45, 80, 100: sum(i x) = 6*20 + 7*40 + 8*45 + 9*80 + 10*100 = 2480
  // (2 * 2480 - 11 * 285) / (10 * 285) = 1825 / 2850 = 0.64035 -> 0.6404
  t.equal(week.gini, 0.6404);
  t.same(week.engagementLevels, h.engagementLevels, 'engagement levels do not depend on the window');
  t.equal(week.medianClaimToSubmissionSeconds, 46_800, 'all four were handed in within the last 7 days');
});

t.test('local days follow the circle’s zone: the same instants fall on other days elsewhere', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [member] = (await joinMembers(app, circle.id, 1)) as TestUser[];
  // Four contributions 1, 7, 13 and 19 hours after the start of yesterday in Shanghai (UTC+8).
  for (const hours of [1, 7, 13, 19])
    await sql`
      INSERT INTO contributions (circle_id, user_id, source, points, reason, created_at)
      VALUES (${circle.id}, ${member!.id}, 'adjustment', 1, 'award',
              (((now() AT TIME ZONE ${ZONE})::date - 1)::timestamp + make_interval(hours => ${hours})) AT TIME ZONE ${ZONE})`.execute(
      db,
    );
  // Each read comes from the source rows (never folded, or folded in the zone before), then from
  // the rollups the fold rebuilt in the new zone.
  const health = async () => (await healthChecked(t, app, db, circle.id, owner.token, '?window=7d')).body;
  const patch = (body: Record<string, unknown>) =>
    call(app, 'PATCH', `/v1/circles/${circle.id}`, { token: owner.token, body });

  t.equal((await patch({ timezone: ZONE })).status, 200);
  t.equal((await health()).engagementLevels.participating, 0, 'one local day in Shanghai: not participating');
  // In Honolulu (UTC-10) the same four instants straddle a local midnight: two local days.
  t.equal((await patch({ timezone: 'Pacific/Honolulu' })).status, 200);
  t.equal((await health()).engagementLevels.participating, 1, 'two local days in Honolulu: participating');

  for (const bad of ['Mars/Olympus', '+08:00', 'CST', 'utc; DROP TABLE circles', ''])
    t.ok(isProblem(await patch({ timezone: bad }), 400), `"${bad}" is refused`);
  t.equal((await patch({ timezone: 'Mars/Olympus' })).body.code, 'invalid_timezone');
  const events = await db
    .selectFrom('events')
    .select('payload')
    .where('type', '=', 'circle.updated')
    .orderBy('id')
    .execute();
  t.same(
    events.map((e) => e.payload),
    [
      { changes: { timezone: { from: 'UTC', to: ZONE } } },
      { changes: { timezone: { from: ZONE, to: 'Pacific/Honolulu' } } },
    ],
    'one circle.updated event per change, none for refused ones',
  );
  t.equal((await patch({ timezone: 'Pacific/Honolulu' })).status, 200, 'no change: 200');
  t.equal(
    (await db.selectFrom('events').select('id').where('type', '=', 'circle.updated').execute()).length,
    2,
    'and no event',
  );
  const renamed = await patch({ name: 'Readers', joinPolicy: 'invite' });
  t.match(renamed.body, { name: 'Readers', joinPolicy: 'invite', timezone: 'Pacific/Honolulu', role: 'owner' });
  const admin = await addMember(app, owner, circle.id, 'admin');
  t.ok(
    isProblem(
      await call(app, 'PATCH', `/v1/circles/${circle.id}`, { token: admin.token, body: { name: 'Mine' } }),
      403,
      'forbidden',
    ),
    'admins may not change the circle',
  );
  t.ok(
    isProblem(
      await call(app, 'PATCH', `/v1/circles/${circle.id}`, { token: member!.token, body: { name: 'Mine' } }),
      403,
    ),
    'nor members',
  );
});

t.test("each live challenge's check-in rate for yesterday: participants who checked in for that day", async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [ann, ben, cat, dan] = await joinMembers(app, circle.id, 4);
  // Members since before the challenge began: yesterday is theirs to make up.
  await membersSinceLongAgo(db, circle.id);
  // Started two days ago in Kiritimati (UTC+14), with make-ups: yesterday there can be written now.
  const probe = await createChallenge(app, owner, circle.id, {
    startsOn: '2026-01-01',
    endsOn: '2026-01-01',
    timezone: 'Pacific/Kiritimati',
  }).catch(() => null);
  t.equal(probe, null, 'a challenge already over is refused');
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Pacific/Kiritimati' }).format(new Date());
  const shift = (d: string, days: number) =>
    new Date(Date.parse(`${d}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
  const yesterday = shift(today, -1);
  const live = await createChallenge(app, owner, circle.id, {
    title: 'Daily reading',
    startsOn: shift(today, -2),
    endsOn: shift(today, 5),
    timezone: 'Pacific/Kiritimati',
    makeUpAllowance: 3,
  });
  t.equal(live.today, today, "the challenge's today is the zone's date");
  // A second challenge that starts today: yesterday is not one of its days, so it is not listed.
  await createChallenge(app, owner, circle.id, {
    title: 'Starts today',
    startsOn: today,
    endsOn: shift(today, 3),
    timezone: 'Pacific/Kiritimati',
  });
  const status = async (user: TestUser, date?: string) =>
    (await checkIn(app, user, live.id, date ? { date } : {})).status;
  t.same(
    [
      await status(ann!),
      await status(ann!, yesterday),
      await status(ben!),
      await status(cat!, yesterday),
      await status(owner, yesterday),
    ],
    [201, 201, 201, 201, 201],
  );
  // dan never checked in: not taking part. The owner's make-up is left out like every owner figure.
  const h = await healthChecked(t, app, db, circle.id, owner.token);
  t.equal(h.status, 200);
  t.same(h.body.checkinRates, [
    { challengeId: live.id, title: 'Daily reading', checkedIn: 2, participants: 3, rate: 0.6667 },
  ]);
  t.ok(dan, 'four members joined');
  // A member who leaves no longer counts.
  t.equal(
    (await call(app, 'DELETE', `/v1/circles/${circle.id}/members/${cat!.id}`, { token: cat!.token })).status,
    204,
  );
  const after = await healthChecked(t, app, db, circle.id, owner.token);
  t.same(after.body.checkinRates, [
    { challengeId: live.id, title: 'Daily reading', checkedIn: 1, participants: 2, rate: 0.5 },
  ]);
  t.same(
    (await db.selectFrom('checkins').select('user_id').where('local_date', '=', yesterday).execute()).length,
    3,
    'three check-ins for yesterday in the table, owner included',
  );

  // Yesterday was its last day, and the closing job has run: that day's rate is still the owner's
  // to see today. A cancelled challenge's is not.
  await sql`UPDATE challenges SET ends_on = ${yesterday}, status = 'closed', closed_at = now() WHERE id = ${live.id}`.execute(
    db,
  );
  const closed = await healthChecked(t, app, db, circle.id, owner.token);
  t.same(closed.body.checkinRates, after.body.checkinRates, 'a challenge closed after its last day shows that day');
  await sql`UPDATE challenges SET status = 'cancelled', cancelled_on = starts_on, closed_at = NULL WHERE id = ${live.id}`.execute(
    db,
  );
  t.same((await healthChecked(t, app, db, circle.id, owner.token)).body.checkinRates, [], 'a cancelled one does not');
});
