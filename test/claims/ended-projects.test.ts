import t from 'tap';
import { sql } from 'kysely';
import type { Db } from '../../src/infra/postgres.js';
import { PROJECT_ENDED_REASON } from '../../src/claims/ended-projects.js';
import {
  buildTestApp,
  call,
  createCircle,
  isProblem,
  onEachQueueBackend,
  queueBackendEnv,
  registerUser,
} from '../helper.js';
import {
  addTasks,
  claimTask,
  createProject,
  joinMembers,
  startWorkers,
  submitWork,
  waitFor,
} from '../marketplace-helpers.js';
import { adjust, assertInvariants, requestSettlementId } from '../settlement-helpers.js';
import { backendPid, waitUntilBlockedBy } from '../lock-waits.js';

// A project cancelled, or frozen for settlement, takes no more work: the outbox relay hands its
// project.cancelled or project.settled event to a subscriber that revokes the project's active
// and submitted claims, so no task slot or member cap stays held by work that can go nowhere.
// Real workers on each queue backend; the projects end before the workers start.

const claimRows = (db: Db) =>
  db.selectFrom('claims').select(['id', 'status', 'revoke_reason', 'member_slot']).orderBy('id').execute();

onEachQueueBackend(
  t,
  "a cancelled or settled project's live claims are revoked; other projects' are kept",
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, { ...queueBackendEnv(backend), MAX_LIVE_CLAIMS_PER_MEMBER: '2' });
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [alice, bob] = await joinMembers(app, circle.id, 2);
    const project = (title: string) =>
      createProject(app, owner, circle.id, { title, rewardPool: { amount: 100, unit: 'credits' } });
    const [cancelled, settled, kept] = [await project('Cancelled'), await project('Settled'), await project('Kept')];
    const [draft, edit] = await addTasks(app, owner, cancelled.id, [{ title: 'Draft' }, { title: 'Edit' }]);
    const [late] = await addTasks(app, owner, settled.id, [{ title: 'Late' }]);
    const [other] = await addTasks(app, owner, kept.id, [{ title: 'Other', slots: 2 }]);

    const active = (await claimTask(app, alice!, draft!.id)).body.id as string;
    const submitted = (await claimTask(app, bob!, edit!.id)).body.id as string;
    t.equal((await submitWork(app, bob!, submitted)).status, 201);
    const frozen = (await claimTask(app, alice!, late!.id)).body.id as string;
    const untouched = (await claimTask(app, bob!, other!.id)).body.id as string;
    t.ok(isProblem(await claimTask(app, alice!, other!.id), 409, 'claim_limit_reached'), "alice's cap of 2 is full");

    const cancel = await call(app, 'PATCH', `/v1/projects/${cancelled.id}`, {
      token: owner.token,
      body: { status: 'cancelled' },
    });
    t.equal(cancel.status, 200);
    await adjust(app, owner, settled.id, bob!.id, 5);
    await requestSettlementId(app, owner, settled.id);

    await startWorkers(t, config);
    const revoked = await waitFor(async () => {
      const rows = await claimRows(db);
      return rows.filter((r) => r.status === 'revoked').length === 3 ? rows : undefined;
    }, 60_000);
    t.ok(revoked, 'the relay handed both ends on');
    const byId = new Map((revoked ?? []).map((r) => [r.id, r]));
    t.match(byId.get(active), { status: 'revoked', revoke_reason: PROJECT_ENDED_REASON['project.cancelled'] });
    t.match(byId.get(submitted), {
      status: 'revoked',
      revoke_reason: PROJECT_ENDED_REASON['project.cancelled'],
      member_slot: null,
    });
    t.match(byId.get(frozen), { status: 'revoked', revoke_reason: PROJECT_ENDED_REASON['project.settled'] });
    t.match(byId.get(untouched), { status: 'active' }, "another project's claim is kept");

    const events = await db
      .selectFrom('events')
      .select(['subject_id', 'actor_id', 'recipient_id'])
      .where('type', '=', 'claim.revoked')
      .orderBy('subject_id')
      .execute();
    t.same(
      events,
      [
        { subject_id: active, actor_id: null, recipient_id: alice!.id },
        { subject_id: submitted, actor_id: null, recipient_id: bob!.id },
        { subject_id: frozen, actor_id: null, recipient_id: alice!.id },
      ].sort((a, b) => (a.subject_id < b.subject_id ? -1 : 1)),
      'each in its member inbox, revoked by the service',
    );
    t.equal((await claimTask(app, alice!, other!.id)).status, 201, "alice's cap is free again");
    await assertInvariants(t, db);
  },
);

onEachQueueBackend(
  t,
  'a claim that commits after its project ended and the end was relayed is revoked by the sweep',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, { ...queueBackendEnv(backend), SWEEP_INTERVAL_SECONDS: '1' });
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [alice] = await joinMembers(app, circle.id, 1);
    const project = await createProject(app, owner, circle.id, {
      title: 'Ending',
      rewardPool: { amount: 100, unit: 'credits' },
    });
    const [task] = await addTasks(app, owner, project.id, [{ title: 'Contended' }]);
    await startWorkers(t, config);

    // The test holds the task's row: the claim reads the project as open, then waits on the row.
    // Meanwhile the project is cancelled and the relay revokes its live claims, of which the claim
    // in flight is not one yet. Let go, the claim commits into the cancelled project.
    let claiming!: ReturnType<typeof claimTask>;
    await db.transaction().execute(async (trx) => {
      await sql`SELECT 1 FROM tasks WHERE id = ${task!.id}::uuid FOR NO KEY UPDATE`.execute(trx);
      claiming = claimTask(app, alice!, task!.id);
      await waitUntilBlockedBy(db, await backendPid(trx));
      const cancel = await call(app, 'PATCH', `/v1/projects/${project.id}`, {
        token: owner.token,
        body: { status: 'cancelled' },
      });
      t.equal(cancel.status, 200, 'the project is cancelled while the claim waits');
      const relayed = await waitFor(
        async () =>
          (await db
            .selectFrom('events')
            .select('id')
            .where('type', '=', 'project.cancelled')
            .where('relayed_at', 'is not', null)
            .executeTakeFirst()) !== undefined,
        60_000,
      );
      t.ok(relayed, 'and its end is relayed before the claim commits');
    });
    const claimed = await claiming;
    t.equal(claimed.status, 201, 'the claim committed into the ended project');

    const revoked = await waitFor(async () => {
      const row = await db
        .selectFrom('claims')
        .select(['status', 'revoke_reason', 'member_slot'])
        .where('id', '=', claimed.body.id)
        .executeTakeFirstOrThrow();
      return row.status === 'revoked' ? row : undefined;
    }, 60_000);
    t.match(
      revoked,
      { status: 'revoked', revoke_reason: PROJECT_ENDED_REASON['project.cancelled'], member_slot: null },
      'the sweep revoked it, as the relay would have',
    );
    const events = await db
      .selectFrom('events')
      .select(['actor_id', 'recipient_id'])
      .where('type', '=', 'claim.revoked')
      .where('subject_id', '=', claimed.body.id)
      .execute();
    t.same(events, [{ actor_id: null, recipient_id: alice!.id }], 'with its event in the member inbox');
    const { live_claims } = await db
      .selectFrom('tasks')
      .select('live_claims')
      .where('id', '=', task!.id)
      .executeTakeFirstOrThrow();
    t.equal(live_claims, 0, 'and its slot given back');
    await assertInvariants(t, db);
  },
);
