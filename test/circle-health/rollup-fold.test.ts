import t, { type Test } from 'tap';
import { sql, type Transaction } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { Database } from '../../src/infra/database-schema.js';
import type { Db } from '../../src/infra/postgres.js';
import { foldCircleRollups } from '../../src/circle-health/rollup-fold.js';
import { storedJobId } from '../../src/jobs/queues.js';
import { foldJobKey } from '../../src/circle-health/rollups.job.js';
import {
  buildTestApp,
  call,
  createCircle,
  onEachQueueBackend,
  queueBackendEnv,
  registerUser,
  type TestUser,
} from '../helper.js';
import {
  addTasks,
  claimTask,
  createProject,
  finishedJob,
  joinMembers,
  processorWorkers,
  submitWork,
  waitFor,
} from '../marketplace-helpers.js';
import { assertInvariants } from '../settlement-helpers.js';

// Folding source rows into the daily rollups: exactly once each, with transactions committing out
// of id and time order, folds repeated or run at once, a zone change rebuilding them; and the
// health report equal to the one read from the source rows alone at every step. The job on both
// queue backends: after a zone change (through the outbox) and from the sweep.

/** An owner's adjustment to `userId`, dated `hoursAgo` hours ago (the test's control of time). */
async function pointsAt(
  db: Db | Transaction<Database>,
  circleId: string,
  userId: string,
  points: number,
  hoursAgo: number,
) {
  await sql`
    INSERT INTO contributions (circle_id, user_id, source, points, reason, created_at)
    VALUES (${circleId}, ${userId}, 'adjustment', ${points}, 'award', now() - make_interval(hours => ${hoursAgo}))`.execute(
    db,
  );
}

/** A transaction the test holds open until it calls `commit` (no sleeps: it waits on promises). */
async function heldOpen(db: Db, work: (trx: Transaction<Database>) => Promise<void>) {
  let commit!: () => void;
  const released = new Promise<void>((resolve) => {
    commit = resolve;
  });
  let ready!: () => void;
  const written = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const done = db.transaction().execute(async (trx) => {
    await work(trx);
    ready();
    await released;
  });
  await Promise.race([written, done]);
  return {
    commit: async () => {
      commit();
      await done;
    },
  };
}

const rollupRows = (db: Db, circleId: string) =>
  db
    .selectFrom('circle_member_days')
    .select(['user_id', 'local_date', 'points', 'activities'])
    .where('circle_id', '=', circleId)
    .orderBy('user_id')
    .orderBy('local_date')
    .execute();

/**
 * The health report through the API, and the same report with the rollups hidden (their zone
 * made to differ, so the service reads the source rows): the two must be equal.
 */
async function healthEqualsRaw(t: Test, app: FastifyInstance, db: Db, circleId: string, owner: TestUser, what: string) {
  const read = async () =>
    (await call(app, 'GET', `/v1/circles/${circleId}/health?window=7d`, { token: owner.token })).body;
  const report = await read();
  const { timezone } = await db
    .selectFrom('circle_rollup_watermarks')
    .select('timezone')
    .where('circle_id', '=', circleId)
    .executeTakeFirstOrThrow();
  await db
    .updateTable('circle_rollup_watermarks')
    .set({ timezone: 'Etc/Hidden' })
    .where('circle_id', '=', circleId)
    .execute();
  const raw = await read();
  await db.updateTable('circle_rollup_watermarks').set({ timezone }).where('circle_id', '=', circleId).execute();
  t.same(report, raw, `${what}: the report equals the one read from the source rows`);
  return report;
}

/** The hour of the day (0-23) at `now` in `zone`. */
const hourIn = (zone: string, now: Date) =>
  Number(new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: 'numeric', hourCycle: 'h23' }).format(now));

/**
 * A zone without daylight saving in which it is now between 08:30 and 15:30, so that events an
 * hour or two apart fall on one local day at whatever hour the test runs (in UTC, a run soon after
 * midnight put an hour-old row on the day before and split a member's day in two).
 */
function zoneNearMidday(now = new Date()): string {
  const zones = [
    'Pacific/Kiritimati',
    'Asia/Tokyo',
    'Asia/Dhaka',
    'Asia/Dubai',
    'UTC',
    'America/Sao_Paulo',
    'Pacific/Honolulu',
  ];
  const fromNoon = (zone: string) => Math.abs(hourIn(zone, now) - 12);
  return zones.reduce((best, zone) => (fromNoon(zone) < fromNoon(best) ? zone : best));
}

t.test('zoneNearMidday finds a zone near noon at every hour of the day', async (t) => {
  const midnight = Date.UTC(2026, 11, 5);
  for (let hour = 0; hour < 24; hour += 0.5) {
    const at = new Date(midnight + hour * 3_600_000);
    const zone = zoneNearMidday(at);
    const local = hourIn(zone, at);
    t.ok(local >= 8 && local <= 15, `${at.toISOString()}: ${zone} at ${local}h`);
  }
});

t.test('rows committed out of id and time order are folded once each, whenever they commit', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  // ben's points an hour ago and his claim now must share a local day.
  const zone = await call(app, 'PATCH', `/v1/circles/${circle.id}`, {
    token: owner.token,
    body: { timezone: zoneNearMidday() },
  });
  t.equal(zone.status, 200, 'the circle keeps a zone where it is now mid-day');
  const [ann, ben] = (await joinMembers(app, circle.id, 2)) as TestUser[];
  const project = await createProject(app, owner, circle.id);
  const [task] = await addTasks(app, owner, project.id, [{ title: 'Work' }]);
  t.same(await foldCircleRollups(db, circle.id), { folded: true, rebuilt: true, rows: 0 }, 'first fold: nothing yet');

  // ann's points are written first, dated earlier, with the lower id, and commit last.
  const late = await heldOpen(db, (trx) => pointsAt(trx, circle.id, ann!.id, 30, 30));
  await pointsAt(db, circle.id, ben!.id, 5, 1);
  const claim = await claimTask(app, ben!, task!.id);
  t.equal((await submitWork(app, ben!, claim.body.id)).status, 201);
  t.same(
    await foldCircleRollups(db, circle.id),
    { folded: true, rebuilt: false, rows: 3 },
    "ben's points, claim, submission",
  );
  t.same(
    (await rollupRows(db, circle.id)).map((r) => r.user_id),
    [ben!.id],
    "ann's row is not folded while its transaction is open",
  );
  await healthEqualsRaw(t, app, db, circle.id, owner, "ann's transaction open");

  await late.commit();
  const tailed = await healthEqualsRaw(t, app, db, circle.id, owner, "ann's row committed, not folded: in the tail");
  t.equal(tailed.activeMembers, 2, 'ann counts already');
  t.same(await foldCircleRollups(db, circle.id), { folded: true, rebuilt: false, rows: 1 }, "then ann's row, once");
  const rows = await rollupRows(db, circle.id);
  t.same(
    rows.map((r) => [r.user_id, Number(r.points), r.activities]).sort(),
    [
      [ann!.id, 30, 1],
      [ben!.id, 5, 3],
    ].sort(),
  );
  t.same(await foldCircleRollups(db, circle.id), { folded: true, rebuilt: false, rows: 0 }, 'folded again: nothing');
  t.same(await rollupRows(db, circle.id), rows, 'the rollups unchanged');
  await healthEqualsRaw(t, app, db, circle.id, owner, 'all folded');
  await assertInvariants(t, db);
});

t.test('folds run at once, while rows keep committing, add every row exactly once', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const members = (await joinMembers(app, circle.id, 4)) as TestUser[];
  const written = members.flatMap((m, i) => [1, 2, 3].map((k) => pointsAt(db, circle.id, m.id, i * 10 + k, k * 20)));
  const folds = [1, 2, 3, 4].map(() => foldCircleRollups(db, circle.id));
  await Promise.all(written);
  const results = await Promise.all(folds);
  const final = await foldCircleRollups(db, circle.id);
  t.equal(
    [...results, final].reduce((sum, r) => sum + r.rows, 0),
    12,
    'twelve rows between the five folds, none twice, none missed',
  );
  t.equal(results.filter((r) => r.rebuilt).length, 1, 'one of them was the first fold');
  await healthEqualsRaw(t, app, db, circle.id, owner, 'after the folds');
  await assertInvariants(t, db);
});

t.test('a new zone: reports read the source rows until the fold rebuilds the rollups in it', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [ann] = (await joinMembers(app, circle.id, 1)) as TestUser[];
  for (const hours of [2, 8, 14, 20, 26]) await pointsAt(db, circle.id, ann!.id, 1, hours);
  await foldCircleRollups(db, circle.id);
  const before = await rollupRows(db, circle.id);
  const patch = await call(app, 'PATCH', `/v1/circles/${circle.id}`, {
    token: owner.token,
    body: { timezone: 'Pacific/Kiritimati' },
  });
  t.equal(patch.status, 200);
  await pointsAt(db, circle.id, ann!.id, 1, 0);
  // Until the rebuild the rollups count UTC days: the report ignores them and reads the rows.
  const report = (await call(app, 'GET', `/v1/circles/${circle.id}/health?window=7d`, { token: owner.token })).body;
  t.equal(report.timezone, 'Pacific/Kiritimati');
  t.same(await rollupRows(db, circle.id), before, 'rollups not rebuilt yet');
  const rebuilt = await foldCircleRollups(db, circle.id);
  t.same(rebuilt, { folded: true, rebuilt: true, rows: 6 }, 'dropped and folded again, every row');
  const days = await sql<{ days: number }>`
    SELECT count(DISTINCT (created_at AT TIME ZONE 'Pacific/Kiritimati')::date)::int AS days FROM contributions
    WHERE circle_id = ${circle.id}`.execute(db);
  t.equal((await rollupRows(db, circle.id)).length, days.rows[0]!.days, "one row per Kiritimati day of ann's");
  const after = await healthEqualsRaw(t, app, db, circle.id, owner, 'rebuilt');
  t.same(after, report, 'the same report before and after the rebuild');
  await assertInvariants(t, db);
});

onEachQueueBackend(
  t,
  'the job: a zone change rebuilds through the outbox; the sweep folds circles behind',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [ann] = (await joinMembers(app, circle.id, 1)) as TestUser[];
    await pointsAt(db, circle.id, ann!.id, 4, 3);
    const queues = await processorWorkers(t, db, config);

    // The sweep finds the circle never folded (and any other circle of this database) and folds it.
    await queues.add('maintenance', { task: 'fold-circle-rollups' }, { jobId: 'sweep:1' });
    const sweep = await finishedJob(queues.get('maintenance'), 'sweep_1');
    t.ok((sweep.returnvalue as { enqueued: number }).enqueued >= 1, 'the circle was behind');
    const watermark = () =>
      db.selectFrom('circle_rollup_watermarks').selectAll().where('circle_id', '=', circle.id).executeTakeFirst();
    const folded = await waitFor(async () => ((await watermark())?.timezone === 'UTC' ? true : undefined), 30_000);
    t.ok(folded, 'folded by the job the sweep enqueued');

    // The zone change records circle.updated; the relay turns it into a fold, which rebuilds.
    await call(app, 'PATCH', `/v1/circles/${circle.id}`, { token: owner.token, body: { timezone: 'Asia/Tokyo' } });
    const event = await db
      .selectFrom('events')
      .select('id')
      .where('type', '=', 'circle.updated')
      .where('subject_id', '=', circle.id)
      .executeTakeFirstOrThrow();
    await queues.add('maintenance', { task: 'relay-outbox' }, { jobId: 'relay:1' });
    await finishedJob(queues.get('maintenance'), 'relay_1');
    const rebuild = await finishedJob(
      queues.get('circle-rollups'),
      storedJobId(foldJobKey(circle.id, `event-${event.id}`)),
    );
    t.same(rebuild.returnvalue, { folded: true, rebuilt: true, rows: 1 });
    t.equal((await watermark())?.timezone, 'Asia/Tokyo');

    // Delivered twice: nothing more. A bad payload fails for good.
    await queues.add('circle-rollups', { circleId: circle.id }, { jobId: 'again' });
    t.same((await finishedJob(queues.get('circle-rollups'), 'again')).returnvalue, {
      folded: true,
      rebuilt: false,
      rows: 0,
    });
    await queues.add('circle-rollups', { circleId: 'not-an-id' }, { jobId: 'bogus' });
    const bogus = await finishedJob(queues.get('circle-rollups'), 'bogus');
    t.match(bogus.failedReason, /invalid circle id/);
    t.equal(bogus.attemptsMade, 1, 'not retried');
    await assertInvariants(t, db);
  },
);
