import t from 'tap';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import * as distinctContributors from '../../db/migrations/0005_distinct_contributors.js';
import { insertContribution } from '../../src/contributions/contributions.repository.js';
import type { Db } from '../../src/infra/postgres.js';
import { buildTestApp, call, createCircle, isProblem, registerUser, REDIS_URL, type TestUser } from '../helper.js';
import {
  addTasks,
  claimNext,
  claimTask,
  completeTask,
  countCodes,
  eventTypes,
  joinMembers,
  projectWithTask,
  review,
  submitWork,
} from '../marketplace-helpers.js';
import { assertInvariants } from '../settlement-helpers.js';
import { http, serviceEnv, startService } from '../faults/cluster.js';

// Redundancy counts distinct members: `requiredAccepts: 3` means three different members' work.
// A member whose work on a task was accepted takes no other slot of it (already_contributed, and
// claims/next skips the task), enforced by a unique index, so it holds across API processes.

async function redundantTask(app: FastifyInstance, owner: TestUser, circleId: string) {
  return projectWithTask(app, owner, circleId, { title: 'Label this image', slots: 3, requiredAccepts: 3 });
}

const contributors = async (db: Db, taskId: string) =>
  (
    await db
      .selectFrom('contributions')
      .select('user_id')
      .where('task_id', '=', taskId)
      .where('source', '=', 'task')
      .execute()
  ).map((c) => c.user_id);

t.test(
  'requiredAccepts 3, slots 3: 50 concurrent claimers, 3 distinct members, done after their 3 accepts',
  async (t) => {
    const { app, db } = await buildTestApp(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const members = await joinMembers(app, circle.id, 50);
    const { project, task } = await redundantTask(app, owner, circle.id);

    const replies = await Promise.all(members.map((m) => claimTask(app, m, task.id)));
    t.same(countCodes(replies), { 201: 3, task_full: 47 });
    const winners = replies.flatMap((r, i) => (r.status === 201 ? [{ member: members[i]!, claimId: r.body.id }] : []));
    t.equal(new Set(winners.map((w) => w.member.id)).size, 3, 'three different members');

    const [first, second, third] = winners;
    t.equal((await submitWork(app, first!.member, first!.claimId)).status, 201);
    t.equal((await review(app, owner, first!.claimId, { decision: 'accept' })).status, 201);
    const again = await claimTask(app, first!.member, task.id);
    t.ok(isProblem(again, 409, 'already_contributed'), 'the accepted member cannot take the freed slot');
    t.ok(
      isProblem(await claimNext(app, first!.member, project.id), 409, 'no_claimable_task'),
      'claims/next skips the task for them',
    );
    t.ok(
      isProblem(await claimTask(app, second!.member, task.id), 409, 'already_claimed'),
      'a live claim still says so',
    );

    for (const w of [second!, third!]) {
      t.equal((await submitWork(app, w.member, w.claimId)).status, 201);
      t.equal((await review(app, owner, w.claimId, { decision: 'accept' })).status, 201);
    }
    const row = await db.selectFrom('tasks').select('status').where('id', '=', task.id).executeTakeFirstOrThrow();
    t.equal(row.status, 'done', 'done after three accepts');
    t.same(
      (await contributors(db, task.id)).sort(),
      winners.map((w) => w.member.id).sort(),
      'from the three different members',
    );
    await assertInvariants(t, db);
  },
);

t.test('a member rushing back to a freed slot after their accept, in parallel: all already_contributed', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [ann, ben] = await joinMembers(app, circle.id, 2);
  const { project, task } = await redundantTask(app, owner, circle.id);

  const claim = await claimTask(app, ann!, task.id);
  t.equal((await submitWork(app, ann!, claim.body.id)).status, 201);
  t.equal((await review(app, owner, claim.body.id, { decision: 'accept' })).status, 201);

  const rush = await Promise.all([
    ...Array.from({ length: 5 }, () => claimTask(app, ann!, task.id)),
    ...Array.from({ length: 5 }, () => claimNext(app, ann!, project.id)),
  ]);
  t.same(countCodes(rush), { already_contributed: 5, no_claimable_task: 5 });
  t.equal((await claimNext(app, ben!, project.id)).status, 201, 'another member still can');
  await assertInvariants(t, db);
});

t.test('two API processes: distinct members across processes', async (t) => {
  const { app, db, config } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const members = await joinMembers(app, circle.id, 20);
  const { project, task } = await redundantTask(app, owner, circle.id);
  // Forty claims on one task queue on its row lock, one transaction after another. With a pool as
  // large as the burst, every request waits in Postgres, not for a pool connection: on a loaded
  // machine the pool's 5-second wait would answer 503 (back-pressure, by design) and the check
  // below is about races, not about load.
  const env = serviceEnv({ config, db }, REDIS_URL, { DATABASE_POOL_SIZE: '25' });
  const apis = await Promise.all([startService(t, 'api', env), startService(t, 'api', env)]);
  const via = (i: number) => apis[i % 2]!.url;

  // Every member claims through both processes at once.
  const replies = await Promise.all(
    members.flatMap((m, i) => [
      http(via(i), 'POST', `/v1/tasks/${task.id}/claims`, { token: m.token }),
      http(via(i + 1), 'POST', `/v1/projects/${project.id}/claims/next`, { token: m.token, body: {} }),
    ]),
  );
  const won = replies.filter((r) => r.status === 201);
  t.equal(won.length, 3, 'three claims in all');
  t.equal(new Set(won.map((r) => r.body.userId)).size, 3, 'by three different members');
  t.same(
    replies.filter((r) => r.status >= 500 || r.status === 0),
    [],
    'no 5xx and no failed connection',
  );

  // The first winner's accepted member, then claiming again through both processes at once.
  const first = won[0]!.body as { id: string; userId: string };
  const member = members.find((m) => m.id === first.userId)!;
  t.equal(
    (
      await http(via(0), 'POST', `/v1/claims/${first.id}/submissions`, {
        token: member.token,
        body: { content: 'done' },
      })
    ).status,
    201,
  );
  t.equal(
    (await http(via(1), 'POST', `/v1/claims/${first.id}/reviews`, { token: owner.token, body: { decision: 'accept' } }))
      .status,
    201,
  );
  const again = await Promise.all(
    Array.from({ length: 6 }, (_, i) => http(via(i), 'POST', `/v1/tasks/${task.id}/claims`, { token: member.token })),
  );
  t.same(
    again.map((r) => `${r.status} ${r.body.code}`),
    Array.from({ length: 6 }, () => '409 already_contributed'),
  );
  await assertInvariants(t, db);
});

t.test(
  'the same task through the in-process app and its data: one accept per member and task is a schema rule',
  async (t) => {
    const { app, db } = await buildTestApp(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [ann] = await joinMembers(app, circle.id, 1);
    const { task } = await redundantTask(app, owner, circle.id);
    const claim = await claimTask(app, ann!, task.id);
    t.equal((await submitWork(app, ann!, claim.body.id)).status, 201);
    t.equal((await review(app, owner, claim.body.id, { decision: 'accept' })).status, 201);
    const row = await db.selectFrom('claims').selectAll().where('id', '=', claim.body.id).executeTakeFirstOrThrow();
    await t.rejects(
      db
        .insertInto('claims')
        .values({
          circle_id: row.circle_id,
          project_id: row.project_id,
          task_id: row.task_id,
          user_id: row.user_id,
          status: 'accepted',
          expires_at: row.expires_at,
        })
        .execute(),
      /claims_one_per_member_and_task/,
    );
    const view = await call(app, 'GET', `/v1/claims/${claim.body.id}`, { token: ann!.token });
    t.equal(view.body.status, 'accepted');
  },
);

t.test(
  'migration 0005 on data written before the rule: repeats stand, live repeats end, revised claims get slots',
  async (t) => {
    const { app, db } = await buildTestApp(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [ann, ben] = await joinMembers(app, circle.id, 2);
    const { project, task } = await redundantTask(app, owner, circle.id);
    const [other] = await addTasks(app, owner, project.id, [{ title: 'Other' }]);
    const firstAccept = await completeTask(app, owner, ann!, task.id);
    const benHeld = await claimTask(app, ben!, other!.id);
    const benRevised = await claimTask(app, ben!, task.id);
    t.equal((await submitWork(app, ben!, benRevised.body.id)).status, 201);

    // The schema as it was, and rows the old code could write: a second accept of ann on the task, a
    // third claim of hers still live, and ben's work sent back by a revise without a member slot.
    await distinctContributors.down(db);
    const legacy = await db.transaction().execute(async (trx) => {
      const claim = (status: 'accepted' | 'active', slot: number | null) =>
        trx
          .insertInto('claims')
          .values({
            circle_id: circle.id,
            project_id: project.id,
            task_id: task.id,
            user_id: ann!.id,
            status,
            member_slot: slot,
            expires_at: sql<Date>`now() + interval '1 hour'`,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
      const repeat = await claim('accepted', null);
      await insertContribution(trx, {
        circleId: circle.id,
        projectId: project.id,
        userId: ann!.id,
        source: 'task',
        taskId: task.id,
        claimId: repeat.id,
        points: 100,
      });
      const live = await claim('active', 1);
      await sql`UPDATE tasks SET live_claims = live_claims + 1 WHERE id = ${task.id}`.execute(trx);
      await sql`UPDATE claims SET status = 'active', member_slot = NULL WHERE id = ${benRevised.body.id}`.execute(trx);
      return { repeat: repeat.id, live: live.id };
    });
    await distinctContributors.up(db);
    // 0005 runs here after the later migrations: its claim.revoked events lack the recipient that
    // 0008 backfills for events written before it. Give them the one 0008 would.
    await sql`
      UPDATE events e SET recipient_id = c.user_id FROM claims c
      WHERE e.type = 'claim.revoked' AND c.id = e.subject_id AND e.recipient_id IS NULL`.execute(db);

    const claims = await db
      .selectFrom('claims')
      .select(['id', 'status', 'member_slot', 'repeat_key', 'revoke_reason'])
      .where('id', 'in', [firstAccept, legacy.repeat, legacy.live, benHeld.body.id, benRevised.body.id])
      .execute();
    const byId = new Map(claims.map((c) => [c.id, c]));
    t.match(byId.get(firstAccept), { status: 'accepted', repeat_key: null }, 'the first accept is the one');
    t.match(
      byId.get(legacy.repeat),
      { status: 'accepted', repeat_key: legacy.repeat },
      'the repeat and its points stand',
    );
    t.match(byId.get(legacy.live), { status: 'revoked', member_slot: null, revoke_reason: /already contributed/ });
    t.same(
      [byId.get(benHeld.body.id)!.member_slot, byId.get(benRevised.body.id)!.member_slot],
      [1, 2],
      'the revised claim counts in the next slot',
    );
    t.same(await eventTypes(db, legacy.live), ['claim.revoked']);
    t.ok(isProblem(await claimTask(app, ann!, task.id), 409, 'already_contributed'));
    await assertInvariants(t, db);
  },
);
