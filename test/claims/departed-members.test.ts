import t from 'tap';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../../src/infra/database-schema.js';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../../src/infra/postgres.js';
import { DEPARTED_REASON, revokeClaimsOfDepartedMembers } from '../../src/claims/departed-members.js';
import { relayOutbox } from '../../src/events/outbox-relay.js';
import { backendPid, lockWaiterCount, waitUntilBlockedBy } from '../lock-waits.js';
import {
  buildTestApp,
  call,
  createCircle,
  isProblem,
  onEachQueueBackend,
  queueBackendEnv,
  registerUser,
  type Reply,
  type TestUser,
} from '../helper.js';
import {
  addTasks,
  claimTask,
  createProject,
  eventTypes,
  joinMembers,
  startWorkers,
  submitWork,
  waitFor,
} from '../marketplace-helpers.js';
import { assertInvariants } from '../settlement-helpers.js';

// A member who leaves a circle, or is removed from it, gives back the claims they were working on:
// the outbox relay hands each member.left event to a subscriber that revokes the member's active
// claims in that circle (claim.revoked, in their inbox), so the task slots and the member's cap are
// free again. Submitted work stays for review; claims in other circles, and claims made after
// coming back, are kept. Real workers on each queue backend; the departures happen before the
// workers start, so the relay finds them all waiting, as after a busy second.

const claimStatus = async (db: Db, claimId: string) =>
  (await db.selectFrom('claims').select('status').where('id', '=', claimId).executeTakeFirstOrThrow()).status;

const leave = (app: FastifyInstance, actor: TestUser, circleId: string, member: TestUser) =>
  call(app, 'DELETE', `/v1/circles/${circleId}/members/${member.id}`, { token: actor.token });

const revokedEvents = (db: Db) =>
  db
    .selectFrom('events')
    .select(['subject_id', 'circle_id', 'actor_id', 'recipient_id', 'payload'])
    .where('type', '=', 'claim.revoked')
    .orderBy('id')
    .execute();

/** Waits until every member.left event has been relayed (handed to the subscribers). */
const relayed = (db: Db) =>
  waitFor(
    async () =>
      (
        await db
          .selectFrom('events')
          .select('id')
          .where('type', '=', 'member.left')
          .where('relayed_at', 'is', null)
          .execute()
      ).length === 0,
    60_000,
  );

onEachQueueBackend(
  t,
  "leaving or being removed revokes the member's active claims in that circle; submitted work and other circles stay",
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, { ...queueBackendEnv(backend), MAX_LIVE_CLAIMS_PER_MEMBER: '2' });
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [alice, bob, carol] = await joinMembers(app, circle.id, 3);
    const project = await createProject(app, owner, circle.id);
    const [draft, edit, review] = await addTasks(app, owner, project.id, [
      { title: 'Draft' },
      { title: 'Edit' },
      { title: 'Review' },
    ]);
    // Alice also works in a circle she stays in.
    const elsewhere = await createCircle(app, owner);
    await call(app, 'POST', `/v1/circles/${elsewhere.id}/members`, { token: alice!.token, body: {} });
    const [other] = await addTasks(app, owner, (await createProject(app, owner, elsewhere.id)).id, [
      { title: 'Other' },
    ]);

    const active = (await claimTask(app, alice!, draft!.id)).body.id as string;
    const submitted = (await claimTask(app, alice!, edit!.id)).body.id as string;
    t.equal((await submitWork(app, alice!, submitted)).status, 201);
    const kept = (await claimTask(app, alice!, other!.id)).body.id as string;
    const removed = (await claimTask(app, bob!, review!.id)).body.id as string;
    t.ok(isProblem(await claimTask(app, carol!, draft!.id), 409, 'task_full'), 'the slot is held');

    t.equal((await leave(app, alice!, circle.id, alice!)).status, 204, 'alice leaves');
    t.equal((await leave(app, owner, circle.id, bob!)).status, 204, 'the owner removes bob');
    t.ok(
      isProblem(await call(app, 'POST', `/v1/claims/${active}/release`, { token: alice!.token }), 404),
      'gone from the circle, she cannot release it herself',
    );

    await startWorkers(t, config);
    t.ok(await relayed(db), 'the relay handed the departures on');
    t.equal(await claimStatus(db, active), 'revoked', "alice's active claim is revoked");
    t.equal(await claimStatus(db, removed), 'revoked', "so is bob's, removed by the owner");
    t.equal(await claimStatus(db, submitted), 'submitted', 'her submitted work stays for review');
    t.equal(await claimStatus(db, kept), 'active', 'her claim in the circle she stays in is kept');
    const row = await db
      .selectFrom('claims')
      .select('revoke_reason')
      .where('id', '=', active)
      .executeTakeFirstOrThrow();
    t.equal(row.revoke_reason, DEPARTED_REASON);

    t.same(await revokedEvents(db), [
      {
        subject_id: active,
        circle_id: circle.id,
        actor_id: null,
        recipient_id: alice!.id,
        payload: { taskId: draft!.id, reason: DEPARTED_REASON },
      },
      {
        subject_id: removed,
        circle_id: circle.id,
        actor_id: null,
        recipient_id: bob!.id,
        payload: { taskId: review!.id, reason: DEPARTED_REASON },
      },
    ]);
    const inbox = await call(app, 'GET', '/v1/me/events?types=claim.revoked', { token: alice!.token });
    t.equal(inbox.status, 200);
    t.match(inbox.body.items, [
      {
        type: 'claim.revoked',
        subjectId: active,
        actor: null,
        summary: `${alice!.handle}’s claim on “Draft” was revoked: ${DEPARTED_REASON}`,
      },
    ]);
    t.equal(inbox.body.items.length, 1, 'in the inbox of the member who left');

    // The slots are free: the task for another member, the member slot for alice elsewhere.
    t.equal((await claimTask(app, carol!, draft!.id)).status, 201, 'the task can be claimed again');
    t.equal((await claimTask(app, carol!, review!.id)).status, 201);
    const [second] = await addTasks(app, owner, (await createProject(app, owner, elsewhere.id)).id, [
      { title: 'More' },
    ]);
    t.equal((await claimTask(app, alice!, second!.id)).status, 201, 'her cap of 2 counts only the claim she kept');
    await assertInvariants(t, db);
  },
);

onEachQueueBackend(
  t,
  'claims made after a rejoin are kept, and an event relayed again revokes nothing more',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [alice] = await joinMembers(app, circle.id, 1);
    const project = await createProject(app, owner, circle.id);
    const [before, after] = await addTasks(app, owner, project.id, [{ title: 'Before' }, { title: 'After' }]);

    const old = (await claimTask(app, alice!, before!.id)).body.id as string;
    t.equal((await leave(app, alice!, circle.id, alice!)).status, 204);
    t.equal(
      (await call(app, 'POST', `/v1/circles/${circle.id}/members`, { token: alice!.token, body: {} })).status,
      201,
      'she comes back before the relay ran',
    );
    const fresh = (await claimTask(app, alice!, after!.id)).body.id as string;

    await startWorkers(t, config);
    t.ok(await relayed(db));
    t.equal(await claimStatus(db, old), 'revoked', 'the claim from before she left is revoked');
    t.equal(await claimStatus(db, fresh), 'active', 'the claim made after she came back is hers');
    t.same(
      (await revokedEvents(db)).map((e) => e.subject_id),
      [old],
    );

    // The same event relayed again (a redelivery): nothing left to revoke, no second event.
    await sql`UPDATE events SET relayed_at = NULL WHERE type = 'member.left'`.execute(db);
    t.ok(await relayed(db), 'relayed again');
    t.equal(await claimStatus(db, fresh), 'active');
    t.same(await eventTypes(db, old), ['claim.created', 'claim.revoked'], 'one revocation event');
    t.same(await eventTypes(db, fresh), ['claim.created']);
    await assertInvariants(t, db);
  },
);

// How each claim route is held up after it has read the membership: a task's row the test holds
// for POST /tasks/:id/claims; for claims/next, which passes over locked tasks, an uncommitted
// claim of the same member in the same member slot, which its insert must wait on and which the
// test then rolls back.
const HOLDS = {
  'POST /tasks/:id/claims': async (trx: Transaction<Database>, ids: { taskId: string }) => {
    await sql`SELECT 1 FROM tasks WHERE id = ${ids.taskId}::uuid FOR UPDATE`.execute(trx);
  },
  'POST /projects/:id/claims/next': async (trx: Transaction<Database>, ids: { taskId: string; userId: string }) => {
    await sql`INSERT INTO claims (circle_id, project_id, task_id, user_id, member_slot, expires_at)
      SELECT circle_id, project_id, id, ${ids.userId}::uuid, 1, now() + interval '1 hour' FROM tasks
      WHERE id = ${ids.taskId}::uuid`.execute(trx);
  },
};

for (const [route, hold] of Object.entries(HOLDS)) {
  t.test(`${route}: a claim in flight when its member leaves is revoked with the departure, or refused`, async (t) => {
    const { app, db } = await buildTestApp(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [alice] = await joinMembers(app, circle.id, 1);
    const project = await createProject(app, owner, circle.id);
    const [task] = await addTasks(app, owner, project.id, [{ title: 'Contested' }]);
    const relay = () => relayOutbox(db, app.queues, {}, [revokeClaimsOfDepartedMembers]);
    const claim = () =>
      route.includes('next')
        ? call(app, 'POST', `/v1/projects/${project.id}/claims/next`, { token: alice!.token, body: {} })
        : call(app, 'POST', `/v1/tasks/${task!.id}/claims`, { token: alice!.token });

    // Alice's claim has read her membership and waits on the test. She leaves meanwhile, and the
    // relay runs on whatever departure has committed: without a lock on the membership it finds
    // no claim to revoke, and the claim commits after it.
    let claiming!: Promise<Reply>;
    let leaving!: Promise<Reply>;
    const rolledBack = new Error('the hold is let go');
    await db
      .transaction()
      .execute(async (trx) => {
        await hold(trx, { taskId: task!.id, userId: alice!.id });
        claiming = claim();
        await waitUntilBlockedBy(db, await backendPid(trx));
        let left = false;
        leaving = leave(app, alice!, circle.id, alice!).finally(() => {
          left = true;
        });
        // The departure either returns or queues behind the claim.
        t.ok(await waitFor(async () => left || (await lockWaiterCount(db)) >= 2, 20_000, 10));
        await relay();
        throw rolledBack;
      })
      .catch((err: unknown) => {
        if (err !== rolledBack) throw err;
      });
    const [claimed, departed] = await Promise.all([claiming, leaving]);
    t.equal(departed.status, 204, 'she left');
    await relay();
    const live = await db
      .selectFrom('claims')
      .select('id')
      .where('user_id', '=', alice!.id)
      .where('status', '=', 'active')
      .execute();
    t.same(live, [], 'she holds no claim in a circle she left');
    if (claimed.status === 201) {
      t.same(await eventTypes(db, claimed.body.id), ['claim.created', 'claim.revoked'], 'revoked with the departure');
    } else {
      t.equal(claimed.status, 404, 'or the claim found her gone');
    }
    const row = await db.selectFrom('tasks').select('live_claims').where('id', '=', task!.id).executeTakeFirstOrThrow();
    t.equal(row.live_claims, 0, 'the slot is free again');
    await assertInvariants(t, db);
  });
}
