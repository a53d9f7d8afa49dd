import t from 'tap';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../../src/infra/postgres.js';
import { endClaim, expireOverdueClaims } from '../../src/claims/claims.repository.js';
import { heldTransaction } from '../held-transaction.js';
import { answeredOrBlocked, backendPid } from '../lock-waits.js';
import { buildTestApp, call, createCircle, isProblem, registerUser, type TestUser } from '../helper.js';
import {
  addTasks,
  claimNext,
  claimTask,
  countCodes,
  createProject,
  joinMembers,
  review,
  submitWork,
} from '../marketplace-helpers.js';
import { assertInvariants } from '../settlement-helpers.js';

// Work sent back by a revise counts against MAX_LIVE_CLAIMS_PER_MEMBER like a new claim. At the cap
// the revise still goes through (the reviewer's decision stands) and the claim takes an overflow
// slot, which moves into the first regular slot the member frees: the member claims nothing new
// until they are back below the cap.

const CAP = 2;

async function scene(t: Parameters<typeof buildTestApp>[0]) {
  const { app, db } = await buildTestApp(t, { MAX_LIVE_CLAIMS_PER_MEMBER: String(CAP) });
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [member] = await joinMembers(app, circle.id, 1);
  const project = await createProject(app, owner, circle.id);
  const tasks = await addTasks(
    app,
    owner,
    project.id,
    Array.from({ length: 12 }, (_, i) => ({ title: `Task ${i}` })),
  );
  return { app, db, owner, member: member!, project, tasks };
}

/** The member's active claims with their member slots, lowest slot first. */
const activeSlots = async (db: Db, userId: string) =>
  db
    .selectFrom('claims')
    .select(['id', 'member_slot'])
    .where('user_id', '=', userId)
    .where('status', '=', 'active')
    .orderBy('member_slot')
    .execute();

/** Claims a task and hands its work in: the member then holds it without a member slot. */
async function submitted(app: FastifyInstance, member: TestUser, taskId: string) {
  const claim = await claimTask(app, member, taskId);
  if (claim.status !== 201) throw new Error(`claim failed: ${claim.status}`);
  const sent = await submitWork(app, member, claim.body.id);
  if (sent.status !== 201) throw new Error(`submit failed: ${sent.status}`);
  return claim.body.id as string;
}

const revise = (app: FastifyInstance, owner: TestUser, claimId: string) =>
  review(app, owner, claimId, { decision: 'revise', feedback: 'Please add the sources.' });

const rush = (app: FastifyInstance, member: TestUser, projectId: string, n = 6) =>
  Promise.all(Array.from({ length: n }, () => claimNext(app, member, projectId)));

t.test(
  'a member at the cap with work sent back: the revise succeeds, and the cap holds until they drop below it',
  async (t) => {
    const { app, db, owner, member, project, tasks } = await scene(t);
    const sentBack = await submitted(app, member, tasks[0]!.id);
    const held = [await claimTask(app, member, tasks[1]!.id), await claimTask(app, member, tasks[2]!.id)];
    t.same(
      held.map((r) => r.status),
      [201, 201],
      'at the cap',
    );

    t.equal((await revise(app, owner, sentBack)).status, 201, 'the reviewer decision stands at the cap');
    t.same(countCodes(await rush(app, member, project.id)), { claim_limit_reached: 6 }, 'no new claim over the cap');
    const slots = await activeSlots(db, member.id);
    t.same(
      slots.map((s) => s.member_slot),
      [-1, 1, 2],
      'the revised claim counts, in an overflow slot',
    );
    t.equal(slots[0]!.id, sentBack);

    // One claim ends: the revised claim moves into its slot, so the member is still at the cap.
    t.equal((await call(app, 'POST', `/v1/claims/${held[0]!.body.id}/release`, { token: member.token })).status, 200);
    t.same(
      (await activeSlots(db, member.id)).map((s) => [s.id, s.member_slot]),
      [
        [sentBack, 1],
        [held[1]!.body.id, 2],
      ],
    );
    t.same(countCodes(await rush(app, member, project.id)), { claim_limit_reached: 6 }, 'still at the cap');

    // Below the cap again: exactly one place.
    t.equal((await submitWork(app, member, held[1]!.body.id)).status, 201);
    t.same(countCodes(await rush(app, member, project.id)), { 201: 1, claim_limit_reached: 5 });
    t.equal((await activeSlots(db, member.id)).length, CAP);
    await assertInvariants(t, db);
  },
);

t.test('claims/next calls racing a revise of a member one below the cap: the cap still holds', async (t) => {
  const { app, db, owner, member, project, tasks } = await scene(t);
  const first = await submitted(app, member, tasks[0]!.id);
  const second = await submitted(app, member, tasks[1]!.id);
  t.equal((await claimTask(app, member, tasks[2]!.id)).status, 201, 'one active claim, one place left');

  // The revise and a burst of claims/next at once: whichever wins the last regular slot, the other
  // side gets what the rule says (the revise an overflow slot, the claims claim_limit_reached).
  const [revised, ...claims] = await Promise.all([
    revise(app, owner, first),
    ...Array.from({ length: 6 }, () => claimNext(app, member, project.id)),
  ]);
  t.equal(revised!.status, 201, 'the revise always goes through');
  const won = claims.filter((r) => r.status === 201).length;
  t.ok(won <= 1, `at most one new claim (${won})`);
  t.same(countCodes(claims), won ? { 201: 1, claim_limit_reached: 5 } : { claim_limit_reached: 6 });
  const regular = (await activeSlots(db, member.id)).filter((s) => s.member_slot! > 0);
  t.equal(regular.length, CAP, 'the regular slots are full');

  // A second revise right after, with another burst: nothing new gets through.
  const [again, ...more] = await Promise.all([
    revise(app, owner, second),
    ...Array.from({ length: 6 }, () => claimNext(app, member, project.id)),
  ]);
  t.equal(again!.status, 201);
  t.same(countCodes(more), { claim_limit_reached: 6 });
  const slots = await activeSlots(db, member.id);
  t.equal(slots.length, 3 + won, 'every active claim counted: the first, both revised, any new one');
  t.equal(slots.filter((s) => s.member_slot! < 0).length, slots.length - CAP, 'the rest in overflow slots');
  await assertInvariants(t, db);
});

t.test("an expiring claim hands its slot to the member's revised work over the cap", async (t) => {
  const { app, db, owner, member, project, tasks } = await scene(t);
  const sentBack = await submitted(app, member, tasks[0]!.id);
  const a = await claimTask(app, member, tasks[1]!.id);
  t.equal((await claimTask(app, member, tasks[2]!.id)).status, 201);
  t.equal((await revise(app, owner, sentBack)).status, 201);

  await db
    .updateTable('claims')
    .set({ expires_at: sql<Date>`now() - interval '1 second'` })
    .where('id', '=', a.body.id)
    .execute();
  t.same(await expireOverdueClaims(db, 100), [{ id: a.body.id }]);
  t.same(
    (await activeSlots(db, member.id)).map((s) => s.member_slot),
    [1, 2],
    "the revised claim took the expired claim's slot",
  );
  t.ok(isProblem(await claimNext(app, member, project.id), 409, 'claim_limit_reached'));
  await assertInvariants(t, db);
});

t.test("cancelling a task hands its revoked claim's slot to the member's revised work over the cap", async (t) => {
  const { app, db, owner, member, project, tasks } = await scene(t);
  const sentBack = await submitted(app, member, tasks[0]!.id);
  const a = await claimTask(app, member, tasks[1]!.id);
  t.equal((await claimTask(app, member, tasks[2]!.id)).status, 201);
  t.equal((await revise(app, owner, sentBack)).status, 201);
  t.equal((await activeSlots(db, member.id)).filter((s) => s.member_slot! < 0).length, 1, 'one claim over the cap');

  const cancelled = await call(app, 'POST', `/v1/tasks/${tasks[1]!.id}/cancel`, {
    token: owner.token,
    body: { reason: 'No longer needed.' },
  });
  t.equal(cancelled.status, 200);
  const revoked = await db.selectFrom('claims').select('status').where('id', '=', a.body.id).executeTakeFirstOrThrow();
  t.equal(revoked.status, 'revoked');
  t.same(
    (await activeSlots(db, member.id)).map((s) => s.member_slot),
    [1, 2],
    "the revised claim took the revoked claim's slot",
  );
  t.ok(isProblem(await claimNext(app, member, project.id), 409, 'claim_limit_reached'), 'still at the cap');
  await assertInvariants(t, db);
});

t.test(
  'a revise while a release of the same member is in flight: the revised claim still ends up in the freed slot',
  async (t) => {
    const { app, db, owner, member, project, tasks } = await scene(t);
    const sentBack = await submitted(app, member, tasks[0]!.id);
    const released = await claimTask(app, member, tasks[1]!.id);
    t.equal((await claimTask(app, member, tasks[2]!.id)).status, 201, 'at the cap');

    // The release has freed its slot and looked for overflow claims to move (none yet), and is not
    // committed: a revise reading the member's slots now would still see them all taken.
    const release = await heldTransaction(db, async (trx) => {
      t.ok(await endClaim(trx, released.body.id, ['active'], 'released'), 'the release ended its claim');
      return backendPid(trx);
    });
    const revising = revise(app, owner, sentBack);
    const outcome = await answeredOrBlocked(db, release.value, revising);
    t.ok('blocked' in outcome, 'the revise waits for the release of the same member');
    await release.commit();
    t.equal((await revising).status, 201, 'the revise goes through');

    t.same(
      (await activeSlots(db, member.id)).map((s) => s.member_slot),
      [1, 2],
      'the revised claim took the released slot: no overflow claim beside a free slot',
    );
    t.same(countCodes(await rush(app, member, project.id)), { claim_limit_reached: 6 }, 'the cap holds');
    await assertInvariants(t, db);
  },
);
