import t from 'tap';
import { sql } from 'kysely';
import { buildTestApp, call } from '../helper.js';
import {
  addTasks,
  circleWithRoles,
  claimTask,
  createProject,
  review,
  startWorkers,
  submitWork,
  waitFor,
} from '../marketplace-helpers.js';
import { remindEndingLeases } from '../../src/claims/lease-reminder.job.js';
import type { Db } from '../../src/infra/postgres.js';

// The lease-ending reminder: a notice in the member's inbox once per lease period when their lease
// ends within the hour, written by a scheduled maintenance task, exactly once however many workers
// run it. Time is moved in the database: the test sets when a lease started and when it ends.

/** Moves a lease so it started `startedAgo` ago and ends in `endsIn` (SQL intervals). */
const setLease = (db: Db, claimId: string, startedAgo: string, endsIn: string) =>
  sql`UPDATE claims SET lease_started_at = now() - ${startedAgo}::interval, expires_at = now() + ${endsIn}::interval
      WHERE id = ${claimId}`.execute(db);

const reminders = async (db: Db, claimId?: string) =>
  (
    await db
      .selectFrom('events')
      .select(['subject_id', 'recipient_id', 'recipient_only', 'payload'])
      .where('type', '=', 'claim.lease_ending')
      .$if(claimId !== undefined, (q) => q.where('subject_id', '=', claimId!))
      .orderBy('id')
      .execute()
  ).map((r) => ({ ...r, payload: r.payload as Record<string, string> }));

t.test('one reminder per lease period, to the member, when the lease ends within the hour', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, circle, admin, member } = await circleWithRoles(app);
  const project = await createProject(app, owner, circle.id, { leaseSeconds: 4 * 3600 });
  const [soon, later, short] = await addTasks(app, owner, project.id, [
    { title: 'Soon' },
    { title: 'Later' },
    { title: 'Short' },
  ]);
  const soonClaim = (await claimTask(app, member, soon!.id)).body.id as string;
  const laterClaim = (await claimTask(app, member, later!.id)).body.id as string;
  const shortClaim = (await claimTask(app, member, short!.id)).body.id as string;
  await setLease(db, soonClaim, '3 hours', '40 minutes');
  await setLease(db, laterClaim, '2 hours', '61 minutes');
  await setLease(db, shortClaim, '10 minutes', '30 minutes'); // a 40-minute lease: no notice

  t.equal(await remindEndingLeases(db), 1, 'the lease ending in 40 minutes');
  t.equal(await remindEndingLeases(db), 0, 'and only once');
  const [first] = await reminders(db);
  t.match(first, { subject_id: soonClaim, recipient_id: member.id, recipient_only: true });
  t.match(first!.payload, { taskId: soon!.id, projectId: project.id });

  const inbox = await call(app, 'GET', '/v1/me/events?types=claim.lease_ending', { token: member.token });
  t.same(
    inbox.body.items.map((i: { summary: string }) => i.summary),
    [`${member.handle}’s lease on “Soon” ends within the hour`],
  );
  const feed = await call(app, 'GET', `/v1/circles/${circle.id}/events?types=claim.lease_ending`, {
    token: owner.token,
  });
  t.same(feed.body.items, [], 'reminders stay out of the circle feed');

  // Extending keeps the lease period: no second reminder when it nears its end again.
  t.equal((await call(app, 'POST', `/v1/claims/${soonClaim}/extend`, { token: member.token, body: {} })).status, 200);
  await sql`UPDATE claims SET expires_at = now() + interval '20 minutes' WHERE id = ${soonClaim}`.execute(db);
  t.equal(await remindEndingLeases(db), 0, 'an extended lease is the same period');

  // A revise starts a new lease period: its end is announced again.
  t.equal((await submitWork(app, member, soonClaim)).status, 201);
  t.equal((await review(app, admin, soonClaim, { decision: 'revise', feedback: 'Again' })).status, 201);
  await sql`UPDATE claims SET expires_at = lease_started_at + interval '90 minutes' WHERE id = ${soonClaim}`.execute(
    db,
  );
  t.equal(await remindEndingLeases(db), 0, 'the revised lease ends in 90 minutes: not yet');
  await sql`UPDATE claims SET lease_started_at = lease_started_at - interval '1 hour', expires_at = now() + interval '5 minutes'
            WHERE id = ${soonClaim}`.execute(db);
  t.equal(await remindEndingLeases(db), 1, 'the new lease period gets its own reminder');
  const both = await reminders(db, soonClaim);
  t.equal(both.length, 2);
  t.not(both[0]!.payload.leaseStartedAt, both[1]!.payload.leaseStartedAt, 'one per lease period');

  // Leases that ended, or claims no longer active, get nothing.
  await setLease(db, laterClaim, '2 hours', '-1 minute');
  t.equal((await call(app, 'POST', `/v1/claims/${shortClaim}/release`, { token: member.token })).status, 200);
  t.equal(await remindEndingLeases(db), 0);
});

t.test('concurrent runs on several connections write each reminder once', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, circle, members } = await circleWithRoles(app, { members: 5 });
  const project = await createProject(app, owner, circle.id, { leaseSeconds: 4 * 3600 });
  const tasks = await addTasks(
    app,
    owner,
    project.id,
    Array.from({ length: 40 }, (_, i) => ({ title: `T${i}` })),
  );
  for (const [i, task] of tasks.entries()) await claimTask(app, members[i % members.length]!, task.id);
  await sql`UPDATE claims SET lease_started_at = now() - interval '3 hours', expires_at = now() + interval '30 minutes'`.execute(
    db,
  );
  const written = await Promise.all(Array.from({ length: 5 }, () => remindEndingLeases(db)));
  t.equal(
    written.reduce((a, b) => a + b, 0),
    40,
    `five runs at once wrote ${written.join(' + ')} = 40 reminders`,
  );
  t.equal((await reminders(db)).length, 40, 'one per claim');
});

t.test('the workers send reminders on their schedule', async (t) => {
  const { app, db, config } = await buildTestApp(t);
  const { owner, circle, member } = await circleWithRoles(app);
  const project = await createProject(app, owner, circle.id, { leaseSeconds: 4 * 3600 });
  const [task] = await addTasks(app, owner, project.id, [{ title: 'Scheduled' }]);
  const claimId = (await claimTask(app, member, task!.id)).body.id as string;
  await setLease(db, claimId, '3 hours', '10 minutes');
  await startWorkers(t, config);
  const found = await waitFor(async () => (await reminders(db, claimId))[0], 20_000);
  t.match(found, { recipient_id: member.id }, 'the maintenance schedule wrote the reminder');
});
