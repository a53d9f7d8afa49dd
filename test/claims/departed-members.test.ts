import t from 'tap';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../../src/infra/postgres.js';
import { DEPARTED_REASON } from '../../src/claims/departed-members.js';
import {
  buildTestApp,
  call,
  createCircle,
  isProblem,
  onEachQueueBackend,
  queueBackendEnv,
  registerUser,
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
