import { createHash } from 'node:crypto';
import t from 'tap';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../../src/infra/postgres.js';
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
  circleWithRoles,
  claimTask,
  completeTask,
  createProject,
  eventTypes,
  joinMembers,
  processorWorkers,
  startWorkers,
  review,
  submitWork,
} from '../marketplace-helpers.js';
import { Webhook } from 'standardwebhooks';
import { sql } from 'kysely';
import { acceptIfOverdue } from '../../src/reviews/reviews.service.js';
import { snapshot } from '../hostile/world.js';
import { answeredOrBlocked, backendPid } from '../lock-waits.js';
import { failSettlement } from '../../src/settlements/settlements.repository.js';
import { createWebhook, messagesOf, messagesSettle, relay, startReceiver } from '../webhooks/webhook-helpers.js';
import {
  adjust,
  assertInvariants,
  recomputeHash,
  requestSettlement,
  requestSettlementId,
  waitForSettled,
} from '../settlement-helpers.js';

// Settlement over the REST API, with the real worker role doing the split: who may request it,
// once and idempotently; the project frozen behind it; reading the result (payouts, statements,
// CSV, preview) and the money it moved (balances, ledger).

interface PayoutView {
  userId: string;
  handle: string;
  points: number;
  amount: number;
  share: { numerator: string; denominator: string };
  roundedUp: boolean;
  capped: boolean;
}

const getSettlement = (app: FastifyInstance, user: TestUser, id: string) =>
  call(app, 'GET', `/v1/settlements/${id}`, { token: user.token });

async function settled(t: Parameters<typeof assertInvariants>[0], db: Db, id: string): Promise<void> {
  t.equal(await waitForSettled(db, id), 'completed', 'the workers completed the settlement');
}

async function rowCounts(db: Db) {
  const counts: Record<string, number> = {};
  for (const table of [
    'settlements',
    'payouts',
    'ledger_accounts',
    'ledger_transactions',
    'ledger_entries',
    'events',
    'contributions',
  ] as const) {
    const row = await db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    counts[table] = Number(row.n);
  }
  return counts;
}

t.test(
  'POST /projects/:id/settlements: owner or admin, once, idempotently; the project is frozen behind it',
  async (t) => {
    const { app, db, config } = await buildTestApp(t);
    const {
      owner,
      circle,
      admin,
      members: [alice, bob],
      outsider,
    } = await circleWithRoles(app, { members: 2 });
    const project = await createProject(app, owner, circle.id, { rewardPool: { amount: 1000, unit: 'credits' } });
    const [done, open, underWay] = await addTasks(app, owner, project.id, [
      { title: 'Done' },
      { title: 'Open' },
      { title: 'In progress' },
    ]);
    await completeTask(app, owner, alice!, done!.id);
    const claim = await claimTask(app, bob!, underWay!.id);
    t.equal(claim.status, 201, 'work under way, not submitted yet');

    t.ok(
      isProblem(await requestSettlement(app, alice!, project.id), 403, 'forbidden'),
      'a plain member may not settle',
    );
    t.ok(
      isProblem(await requestSettlement(app, outsider, project.id), 404, 'project_not_found'),
      'an outsider does not learn the project exists',
    );
    const draft = await createProject(app, owner, circle.id, {
      status: 'draft',
      rewardPool: { amount: 50, unit: 'credits' },
    });
    t.ok(
      isProblem(await requestSettlement(app, owner, draft.id), 409, 'project_not_open'),
      'a draft project has nothing to settle',
    );
    const bad = await requestSettlement(app, owner, project.id, { capBasisPoints: 10001 });
    t.ok(isProblem(bad, 400), 'a cap above 100% is refused');
    t.ok(
      isProblem(await requestSettlement(app, owner, project.id, { minPoints: -1 }), 400),
      'so is a negative minimum',
    );
    t.equal(
      await db.selectFrom('settlements').select('id').executeTakeFirst(),
      undefined,
      'none of that wrote a settlement',
    );

    const key = { 'idempotency-key': 'settle-once-1' };
    const first = await requestSettlement(app, admin, project.id, { minPoints: 1, capBasisPoints: 6000 }, key);
    t.equal(first.status, 202, 'an admin may settle');
    t.match(first.body.id, /^[0-9a-f-]{36}$/);
    t.same(first.body, { id: first.body.id, projectId: project.id, status: 'pending' });
    const replay = await requestSettlement(app, admin, project.id, { minPoints: 1, capBasisPoints: 6000 }, key);
    t.equal(replay.status, 202, 'the same Idempotency-Key replays the first answer');
    t.same(replay.body, first.body);
    t.equal(replay.headers['idempotent-replayed'], 'true');
    t.ok(
      isProblem(await requestSettlement(app, admin, project.id, { minPoints: 2 }, key), 422, 'idempotency_key_reused'),
      'the same key with another body is refused',
    );
    t.ok(
      isProblem(await requestSettlement(app, owner, project.id), 409, 'already_settled'),
      'a second request is refused',
    );
    t.ok(
      isProblem(
        await requestSettlement(app, admin, project.id, {}, { 'idempotency-key': 'settle-once-2' }),
        409,
        'already_settled',
      ),
      'also under a new key',
    );

    const rows = await db.selectFrom('settlements').selectAll().execute();
    t.equal(rows.length, 1, 'one settlement row');
    t.match(rows[0], {
      id: first.body.id,
      project_id: project.id,
      circle_id: circle.id,
      status: 'pending',
      pool_amount: 1000,
      unit: 'credits',
      min_points: '1',
      cap_basis_points: 6000,
      requested_by: admin.id,
    });
    t.same(await eventTypes(db, first.body.id), ['settlement.requested'], 'the request wrote its outbox event');

    const projectNow = await call(app, 'GET', `/v1/projects/${project.id}`, { token: alice!.token });
    t.equal(projectNow.body.status, 'settled', 'the project is settled at once');
    t.ok(isProblem(await claimTask(app, alice!, open!.id), 409, 'project_settled'), 'claims are refused');
    t.ok(isProblem(await submitWork(app, bob!, claim.body.id), 409, 'project_settled'), 'submissions are refused');
    t.ok(
      isProblem(
        await call(app, 'POST', `/v1/projects/${project.id}/adjustments`, {
          token: owner.token,
          body: { userId: bob!.id, points: 5, reason: 'late' },
        }),
        409,
        'project_settled',
      ),
      'adjustments are refused',
    );
    t.ok(
      isProblem(
        await call(app, 'PATCH', `/v1/projects/${project.id}`, {
          token: owner.token,
          body: { rewardPool: { amount: 5000, unit: 'credits' } },
        }),
        409,
        'project_settled',
      ),
      'the pool cannot change under it',
    );

    // The policy reaches the worker: alice is the only payee, and the 60% cap holds her at 600.
    await startWorkers(t, config);
    await settled(t, db, first.body.id);
    const result = await getSettlement(app, alice!, first.body.id);
    t.match(result.body, {
      status: 'completed',
      poolAmount: 1000,
      unit: 'credits',
      policy: { minPoints: 1, capBasisPoints: 6000 },
      totalPoints: 100,
      distributed: 600,
      undistributed: 400,
    });
    t.same(
      result.body.payouts.map((p: PayoutView) => [p.userId, p.amount, p.capped, p.share]),
      [[alice!.id, 600, true, { numerator: '3', denominator: '5' }]],
    );
    t.same(await eventTypes(db, first.body.id), ['settlement.requested', 'settlement.completed']);
    await assertInvariants(t, db);
  },
);

t.test(
  'the freeze writes project.settled once, in its transaction, and a webhook receives it; a re-request after a failure writes none',
  async (t) => {
    // A first attempt that fails (a delivery timing out in a starved process) is retried at once,
    // not after the default 30 s, which the waits below would not outlast.
    const { app, db, config } = await buildTestApp(t, { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_BASE_MS: '20' });
    const receiver = await startReceiver(t);
    const {
      owner,
      circle,
      admin,
      members: [alice],
    } = await circleWithRoles(app, { members: 1 });
    const hook = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.settled'] });
    const project = await createProject(app, owner, circle.id, {
      title: 'Harvest',
      rewardPool: { amount: 100, unit: 'credits' },
    });
    const [task] = await addTasks(app, owner, project.id, [{ title: 'Work' }]);
    await completeTask(app, owner, alice!, task!.id);
    const settledEvents = () =>
      db.selectFrom('events').selectAll().where('type', '=', 'project.settled').orderBy('id').execute();

    const first = await requestSettlementId(app, admin, project.id);
    const events = await settledEvents();
    t.equal(events.length, 1, 'the freeze wrote one project.settled');
    t.match(events[0], {
      circle_id: circle.id,
      subject_id: project.id,
      actor_id: admin.id,
      recipient_only: false,
      payload: { from: 'open', to: 'settled', settlementId: first },
    });
    const frozen = await db
      .selectFrom('projects')
      .select(['status', 'updated_at'])
      .where('id', '=', project.id)
      .executeTakeFirstOrThrow();
    t.equal(frozen.status, 'settled');
    t.equal(
      events[0]!.created_at.getTime(),
      frozen.updated_at.getTime(),
      'written in the transaction that froze the project',
    );
    const feed = await call(app, 'GET', `/v1/circles/${circle.id}/events?types=project.settled`, {
      token: alice!.token,
    });
    t.same(
      feed.body.items.map((i: { summary: string }) => i.summary),
      [`${admin.handle} settled the project “Harvest”`],
      'the feed says so',
    );

    // The settlement fails before any worker takes it (as its last attempt would mark it); the
    // workers then find it finished.
    t.ok(await failSettlement(db, first, 'failed for the test'), 'the settlement failed');
    const queues = await processorWorkers(t, db, config);
    await relay(db, queues, config);
    const [delivered] = await receiver.requests(1);
    const body = new Webhook(hook.secret).verify(delivered!.body, delivered!.headers) as Record<string, any>;
    t.match(body, {
      type: 'project.settled',
      data: {
        eventId: Number(events[0]!.id),
        circleId: circle.id,
        subjectId: project.id,
        actorId: admin.id,
        payload: { from: 'open', to: 'settled', settlementId: first },
      },
    });
    t.match(await messagesSettle(db, hook.id, 1), [{ event_type: 'project.settled', status: 'succeeded' }]);

    // Requested again over the frozen project: a new settlement, no second freeze to announce.
    const again = await requestSettlementId(app, owner, project.id);
    t.not(again, first);
    t.equal(await waitForSettled(db, again), 'completed');
    t.equal((await settledEvents()).length, 1, 'the re-request wrote no second project.settled');
    await relay(db, queues, config);
    t.equal((await messagesOf(db, hook.id)).length, 1, 'so the webhook has nothing more to send');
    t.equal(receiver.received.length, 1);
    await assertInvariants(t, db);
  },
);

onEachQueueBackend(
  t,
  'the worked example: pool 10 over three members with one point each pays 4, 3, 3, the unit to the earliest contributor',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [m0, m1, m2] = await joinMembers(app, circle.id, 3);
    const project = await createProject(app, owner, circle.id, { rewardPool: { amount: 10, unit: 'coins' } });
    // m2 contributes first, then m0, then m1: the remainder unit is m2's.
    for (const m of [m2!, m0!, m1!]) await adjust(app, owner, project.id, m.id, 1, 'Proofread one chapter');

    const id = await requestSettlementId(app, owner, project.id);
    await startWorkers(t, config);
    await settled(t, db, id);
    const res = await getSettlement(app, m1!, id);
    t.equal(res.status, 200, 'any member can read it');
    t.match(res.body, {
      id,
      projectId: project.id,
      circleId: circle.id,
      status: 'completed',
      poolAmount: 10,
      unit: 'coins',
      totalPoints: 3,
      distributed: 10,
      undistributed: 0,
      failureReason: null,
    });
    t.same(
      res.body.payouts.map((p: PayoutView) => [p.userId, p.points, p.amount, p.roundedUp]),
      [
        [m2!.id, 1, 4, true],
        [m0!.id, 1, 3, false],
        [m1!.id, 1, 3, false],
      ],
    );
    t.ok(
      res.body.payouts.every((p: PayoutView) => p.share.numerator === '1' && p.share.denominator === '3' && !p.capped),
      'each is entitled to exactly 1/3',
    );
    t.equal(res.body.payouts[0].handle, m2!.handle);

    // The hash a member can recompute by hand from the documented canonical lines.
    const canonical = [
      'circle-actions/settlement-split/v1',
      'pool=10',
      'minPoints=-',
      'capBasisPoints=-',
      'undistributed=0',
      `${m2!.id},1,4,1/3,true`,
      `${m0!.id},1,3,1/3,false`,
      `${m1!.id},1,3,1/3,false`,
    ]
      .map((l) => `${l}\n`)
      .join('');
    t.equal(
      res.body.resultHash,
      createHash('sha256').update(canonical).digest('hex'),
      'the stored hash is the SHA-256 of the canonical lines',
    );
    t.equal(res.body.resultHash, await recomputeHash(db, id));

    const balances = await call(app, 'GET', '/v1/me/balances', { token: m2!.token });
    t.same(balances.body, { items: [{ circleId: circle.id, unit: 'coins', amount: 4 }], nextCursor: null });
    await assertInvariants(t, db);
  },
);

t.test('work past its review deadline holds a settlement back until it is accepted', async (t) => {
  // The deadline promises an automatic accept at score 100; the deadline job or the sweep records
  // it within seconds. No worker runs here, so the test stands in that gap for as long as it likes.
  const { app, db } = await buildTestApp(t);
  const { owner, circle, members } = await circleWithRoles(app, { members: 1 });
  const project = await createProject(app, owner, circle.id, { rewardPool: { amount: 1000, unit: 'credits' } });
  const [task] = await addTasks(app, owner, project.id, [{ title: 'Translate', weight: 3 }]);
  const claim = await claimTask(app, members[0]!, task!.id);
  t.equal((await submitWork(app, members[0]!, claim.body.id)).status, 201);
  const overdue = () =>
    sql`UPDATE submissions SET review_due_at = clock_timestamp() - interval '1 second'
      WHERE claim_id = ${claim.body.id}::uuid`.execute(db);

  await overdue();
  const before = await snapshot(db);
  const refused = await requestSettlement(app, owner, project.id);
  t.ok(isProblem(refused, 409, 'reviews_overdue'), JSON.stringify(refused.body));
  t.equal(await snapshot(db), before, 'the refusal changed nothing');
  t.equal(
    (await db.selectFrom('projects').select('status').where('id', '=', project.id).executeTakeFirstOrThrow()).status,
    'open',
  );

  // The sweep's accept, then the settlement pays the member for the work.
  const [submission] = await db.selectFrom('submissions').select('id').where('claim_id', '=', claim.body.id).execute();
  t.ok(await acceptIfOverdue(db, submission!.id), 'the work is accepted automatically');
  const settlement = await requestSettlement(app, owner, project.id);
  t.equal(settlement.status, 202);
  const cutoff = await db
    .selectFrom('contributions')
    .select(['user_id', 'points'])
    .where('project_id', '=', project.id)
    .execute();
  t.same(
    cutoff.map((c) => [c.user_id, Number(c.points)]),
    [[members[0]!.id, 300]],
    'the accepted work is behind the cutoff',
  );
});

t.test('work waiting for its review holds a settlement back until it is reviewed', async (t) => {
  // Settling ends the project: work still waiting would be revoked unreviewed and unpaid.
  const { app, db } = await buildTestApp(t);
  const {
    owner,
    circle,
    members: [ann, ben],
  } = await circleWithRoles(app, { members: 2 });
  const project = await createProject(app, owner, circle.id, { rewardPool: { amount: 1000, unit: 'credits' } });
  const [intro, map] = await addTasks(app, owner, project.id, [
    { title: 'Write the intro', weight: 3 },
    { title: 'Draw the map', weight: 1 },
  ]);
  const annClaim = (await claimTask(app, ann!, intro!.id)).body.id as string;
  const benClaim = (await claimTask(app, ben!, map!.id)).body.id as string;
  t.equal((await submitWork(app, ann!, annClaim)).status, 201);
  t.equal((await submitWork(app, ben!, benClaim)).status, 201);
  const preview = () =>
    call(app, 'GET', `/v1/projects/${project.id}/settlement-preview`, { token: owner.token }).then((r) => r.body);

  t.match(await preview(), { reviewsPending: 2, payouts: [] }, 'the preview counts the waiting work');
  const before = await snapshot(db);
  const refused = await requestSettlement(app, owner, project.id);
  t.ok(isProblem(refused, 409, 'reviews_pending'), JSON.stringify(refused.body));
  t.match(refused.body.detail, /^2 submissions are waiting for review/);
  t.equal(await snapshot(db), before, 'the refusal changed nothing');

  t.equal((await review(app, owner, annClaim, { decision: 'accept' })).status, 201);
  t.match(await preview(), { reviewsPending: 1, payouts: [{ userId: ann!.id, amount: 1000 }] });
  t.match((await requestSettlement(app, owner, project.id)).body, {
    code: 'reviews_pending',
    detail: /^1 submission is/,
  });

  t.equal((await review(app, owner, benClaim, { decision: 'reject', feedback: 'Not the map we need.' })).status, 201);
  t.match(await preview(), { reviewsPending: 0 });
  t.equal((await requestSettlement(app, owner, project.id)).status, 202, 'nothing waits: the project settles');
  const claims = await db.selectFrom('claims').select(['id', 'status']).where('project_id', '=', project.id).execute();
  t.same(
    new Map(claims.map((c) => [c.id, c.status])),
    new Map([
      [annClaim, 'accepted'],
      [benClaim, 'rejected'],
    ]),
    'both claims were decided by a reviewer, none revoked',
  );
});

t.test('a submission racing a settle request waits for it and finds the project settled', async (t) => {
  // The settle request checks for waiting work and freezes the project under the project's row
  // lock. The test holds that lock as the request would: the submission must wait for it, then
  // read the project's new status, or it would slip in after the check and be revoked unreviewed.
  const { app, db } = await buildTestApp(t);
  const {
    owner,
    circle,
    members: [ann],
  } = await circleWithRoles(app, { members: 1 });
  const project = await createProject(app, owner, circle.id, { rewardPool: { amount: 100, unit: 'credits' } });
  const [task] = await addTasks(app, owner, project.id, [{ title: 'Translate' }]);
  const claim = (await claimTask(app, ann!, task!.id)).body.id as string;

  let submitting!: Promise<Reply>;
  await db.transaction().execute(async (trx) => {
    await sql`SELECT 1 FROM projects WHERE id = ${project.id}::uuid FOR UPDATE`.execute(trx);
    submitting = submitWork(app, ann!, claim);
    const outcome = await answeredOrBlocked(db, await backendPid(trx), submitting);
    t.ok('blocked' in outcome, `the submission waits for the settle request's lock: ${JSON.stringify(outcome)}`);
    await sql`UPDATE projects SET status = 'settled' WHERE id = ${project.id}::uuid`.execute(trx);
  });
  t.ok(isProblem(await submitting, 409, 'project_settled'), 'it finds the project settled');
  t.equal(await db.selectFrom('submissions').select('id').executeTakeFirst(), undefined, 'no submission stored');
});

t.test('reading a settlement: preview, payouts, statements, CSV, balances and the ledger', async (t) => {
  const { app, db, config } = await buildTestApp(t);
  const {
    owner,
    circle,
    admin,
    members: [ann, ben, cat, dan],
    outsider,
  } = await circleWithRoles(app, { members: 4 });
  const project = await createProject(app, owner, circle.id, { rewardPool: { amount: 1001, unit: 'credits' } });
  const tasks = await addTasks(app, owner, project.id, [
    { title: 'Write the intro', weight: 3 },
    { title: 'Draw the map', weight: 2 },
    { title: 'Fix typos', weight: 1 },
    { title: 'Index', weight: 1 },
  ]);
  await completeTask(app, owner, ann!, tasks[0]!.id); // 300
  await completeTask(app, owner, ben!, tasks[1]!.id, 150); // 300
  await completeTask(app, owner, cat!, tasks[2]!.id); // 100
  await adjust(app, owner, project.id, cat!.id, 50, 'Ran the review meeting'); // cat 150
  await adjust(app, owner, project.id, ann!.id, 40, 'Extra research');
  await adjust(app, owner, project.id, ann!.id, -40, 'Research was already counted'); // ann back to 300
  await completeTask(app, owner, ann!, tasks[3]!.id, 10); // ann 310
  // dan has no points at all.

  // The preview: managers only, writes nothing, and the policy is a query.
  const previewUrl = `/v1/projects/${project.id}/settlement-preview`;
  t.ok(
    isProblem(await call(app, 'GET', previewUrl, { token: ann!.token }), 403, 'forbidden'),
    'members cannot preview',
  );
  t.ok(isProblem(await call(app, 'GET', previewUrl, { token: outsider.token }), 404, 'project_not_found'));
  const before = await rowCounts(db);
  const preview = await call(app, 'GET', previewUrl, { token: admin.token });
  const capped = await call(app, 'GET', `${previewUrl}?capBasisPoints=3500&minPoints=120`, { token: owner.token });
  t.same(await rowCounts(db), before, 'previews write nothing');
  t.equal(preview.status, 200);
  t.match(preview.body, {
    id: null,
    status: 'preview',
    poolAmount: 1001,
    unit: 'credits',
    totalPoints: 760,
    distributed: 1001,
    undistributed: 0,
    createdAt: null,
  });
  t.same(
    capped.body.payouts.map((p: PayoutView) => [p.userId, p.amount, p.capped]),
    [
      [ann!.id, 350, true],
      [ben!.id, 350, true],
      [cat!.id, 301, false],
    ],
    'minPoints and the cap apply: 35% caps ann and ben at 350; cat takes the rest',
  );
  t.same(
    await call(app, 'GET', previewUrl, { token: admin.token }).then((r) => r.body),
    preview.body,
    'the same preview twice',
  );

  const id = await requestSettlementId(app, owner, project.id);
  await startWorkers(t, config);
  await settled(t, db, id);

  const res = await getSettlement(app, ben!, id);
  t.equal(res.status, 200);
  const payouts = res.body.payouts as PayoutView[];
  t.same(payouts, preview.body.payouts, 'the settlement paid exactly what the preview showed');
  t.equal(res.body.resultHash, preview.body.resultHash);
  t.equal(res.body.resultHash, await recomputeHash(db, id));
  // 1001·310/760 = 408.30, 1001·300/760 = 395.13, 1001·150/760 = 197.57: floors sum to 1000, and the one
  // remaining unit goes to the largest remainder, cat's.
  t.same(
    payouts.map((p) => [p.userId, p.points, p.amount, p.share.numerator, p.share.denominator, p.roundedUp]),
    [
      [ann!.id, 310, 408, '31', '76', false],
      [ben!.id, 300, 395, '15', '38', false],
      [cat!.id, 150, 198, '15', '76', true],
    ],
    'shares in lowest terms; the one remainder unit went to the largest remainder',
  );
  t.equal(
    payouts.reduce((sum, p) => sum + p.amount, 0),
    1001,
  );
  t.ok(isProblem(await getSettlement(app, outsider, id), 404, 'settlement_not_found'), 'outsiders do not see it');
  t.ok(
    isProblem(
      await call(app, 'GET', `/v1/settlements/00000000-0000-4000-8000-000000000000`, { token: owner.token }),
      404,
      'settlement_not_found',
    ),
  );

  // Statements: one's own; anyone's for managers; with the rows behind the points.
  const statementUrl = (userId: string) => `/v1/settlements/${id}/statements/${userId}`;
  const own = await call(app, 'GET', statementUrl(ann!.id), { token: ann!.token });
  t.equal(own.status, 200);
  t.match(own.body, {
    settlementId: id,
    userId: ann!.id,
    handle: ann!.handle,
    status: 'completed',
    poolAmount: 1001,
    unit: 'credits',
    totalPoints: 760,
    points: 310,
    payout: {
      points: 310,
      amount: 408,
      share: { numerator: '31', denominator: '76' },
      roundedUp: false,
      capped: false,
    },
  });
  t.same(
    own.body.contributions.map(
      (c: {
        source: string;
        taskTitle: string | null;
        weight: number | null;
        points: number;
        reason: string | null;
      }) => [c.source, c.taskTitle, c.weight, c.points, c.reason],
    ),
    [
      ['task', 'Write the intro', 3, 300, null],
      ['adjustment', null, null, 40, 'Extra research'],
      ['adjustment', null, null, -40, 'Research was already counted'],
      ['task', 'Index', 1, 10, null],
    ],
    'every accepted task and adjustment behind the points, oldest first',
  );
  t.match(
    own.body.explanation,
    /310 of 760 points entitle you to 31\/76 of the pool of 1001 credits: 408 credits, the exact share rounded down/,
  );
  const catByOwner = await call(app, 'GET', statementUrl(cat!.id), { token: owner.token });
  t.equal(catByOwner.status, 200, "the owner reads anyone's statement");
  t.match(
    catByOwner.body.explanation,
    /150 of 760 points entitle you to 15\/76 of the pool of 1001 credits: 198 credits, including one remainder unit/,
  );
  t.equal((await call(app, 'GET', statementUrl(ben!.id), { token: admin.token })).status, 200, 'so does an admin');
  t.ok(
    isProblem(await call(app, 'GET', statementUrl(ben!.id), { token: ann!.token }), 403, 'forbidden'),
    "a member cannot read another member's",
  );
  t.ok(
    isProblem(await call(app, 'GET', statementUrl(ann!.id), { token: outsider.token }), 404, 'settlement_not_found'),
  );
  const none = await call(app, 'GET', statementUrl(dan!.id), { token: dan!.token });
  t.match(none.body, { points: 0, payout: null, contributions: [] });
  t.match(none.body.explanation, /did not qualify/);

  // CSV: a header and one line per payout, the same values.
  const csv = await call(app, 'GET', `/v1/settlements/${id}/payouts.csv`, { token: cat!.token });
  t.equal(csv.status, 200);
  t.match(csv.type, /^text\/csv/);
  t.match(String(csv.headers['content-disposition']), new RegExp(`payouts-${id}\\.csv`));
  const lines = String(csv.body).trimEnd().split('\n');
  t.equal(lines[0], 'user_id,handle,points,amount,share_numerator,share_denominator,rounded_up,capped');
  t.same(
    lines.slice(1),
    payouts.map((p) =>
      [p.userId, p.handle, p.points, p.amount, p.share.numerator, p.share.denominator, p.roundedUp, p.capped].join(','),
    ),
  );
  t.ok(isProblem(await call(app, 'GET', `/v1/settlements/${id}/payouts.csv`, { token: outsider.token }), 404));

  // The money: balances and ledger entries match the payouts.
  for (const p of payouts) {
    const member = [ann, ben, cat].find((m) => m!.id === p.userId)!;
    const balances = await call(app, 'GET', '/v1/me/balances', { token: member.token });
    t.same(balances.body.items, [{ circleId: circle.id, unit: 'credits', amount: p.amount }]);
    const ledger = await call(app, 'GET', '/v1/me/ledger', { token: member.token });
    t.match(ledger.body.items, [
      { circleId: circle.id, unit: 'credits', amount: p.amount, kind: 'settlement_payout', settlementId: id },
    ]);
    t.equal(ledger.body.items.length, 1);
  }
  t.same(
    (await call(app, 'GET', '/v1/me/balances', { token: dan!.token })).body,
    { items: [], nextCursor: null },
    'no payout, no balance',
  );
  t.same((await call(app, 'GET', '/v1/me/ledger', { token: dan!.token })).body, { items: [], nextCursor: null });
  t.same(await eventTypes(db, id), ['settlement.requested', 'settlement.completed']);
  const completed = await db
    .selectFrom('events')
    .select('payload')
    .where('subject_id', '=', id)
    .where('type', '=', 'settlement.completed')
    .executeTakeFirstOrThrow();
  t.match(completed.payload, {
    projectId: project.id,
    distributed: '1001',
    payees: 3,
    resultHash: res.body.resultHash,
  });
  await assertInvariants(t, db);
});

t.test('my ledger pages through entries from several settlements, newest first; balances add up', async (t) => {
  const { app, db, config } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [ann, ben] = await joinMembers(app, circle.id, 2);
  await startWorkers(t, config);
  const ids: string[] = [];
  for (const pool of [7, 11, 13, 17, 19]) {
    const project = await createProject(app, owner, circle.id, {
      title: `Pool ${pool}`,
      rewardPool: { amount: pool, unit: 'credits' },
    });
    await adjust(app, owner, project.id, ann!.id, 2);
    await adjust(app, owner, project.id, ben!.id, 1);
    const id = await requestSettlementId(app, owner, project.id);
    await settled(t, db, id);
    ids.push(id);
  }
  const expected = await Promise.all(
    ids.map(
      async (id) =>
        (await getSettlement(app, ann!, id)).body.payouts.find((p: PayoutView) => p.userId === ann!.id)
          .amount as number,
    ),
  );
  t.same(expected, [5, 7, 9, 11, 13], 'two thirds of each pool, rounded by largest remainder');

  const seen: { amount: number; settlementId: string }[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 10; pages++) {
    const page: Reply = await call(app, 'GET', `/v1/me/ledger?limit=2${cursor ? `&cursor=${cursor}` : ''}`, {
      token: ann!.token,
    });
    t.equal(page.status, 200);
    seen.push(...page.body.items);
    cursor = page.body.nextCursor;
    if (!cursor) break;
  }
  t.same(
    seen.map((e) => [e.settlementId, e.amount]),
    ids.map((id, i) => [id, expected[i]]).reverse(),
    'every entry once, newest first, across pages',
  );
  t.ok(isProblem(await call(app, 'GET', '/v1/me/ledger?cursor=bm9wZQ', { token: ann!.token }), 400, 'invalid_cursor'));
  for (const forged of [['x'], [1.5], ['1 OR 1=1'], [Number.MAX_SAFE_INTEGER + 2]]) {
    const res = await call(
      app,
      'GET',
      `/v1/me/ledger?cursor=${Buffer.from(JSON.stringify(forged)).toString('base64url')}`,
      { token: ann!.token },
    );
    t.ok(isProblem(res, 400, 'invalid_cursor'), `a forged cursor ${JSON.stringify(forged)} is a 400, not a 500`);
  }
  const balances = await call(app, 'GET', '/v1/me/balances', { token: ann!.token });
  t.same(balances.body.items, [{ circleId: circle.id, unit: 'credits', amount: 45 }]);
  t.equal((await call(app, 'GET', '/v1/me/balances')).status, 401);
  await assertInvariants(t, db);
});

onEachQueueBackend(
  t,
  'a zero pool and a project without contributors complete without paying anyone',
  async (t, backend) => {
    const { app, db, config } = await buildTestApp(t, queueBackendEnv(backend));
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [ann, ben] = await joinMembers(app, circle.id, 2);
    const zeroPool = await createProject(app, owner, circle.id, {
      title: 'Volunteers',
      rewardPool: { amount: 0, unit: 'credits' },
    });
    await adjust(app, owner, zeroPool.id, ann!.id, 3);
    await adjust(app, owner, zeroPool.id, ben!.id, 1);
    const nobody = await createProject(app, owner, circle.id, {
      title: 'Nobody came',
      rewardPool: { amount: 500, unit: 'credits' },
    });
    const zeroId = await requestSettlementId(app, owner, zeroPool.id);
    const nobodyId = await requestSettlementId(app, owner, nobody.id);
    await startWorkers(t, config);
    await settled(t, db, zeroId);
    await settled(t, db, nobodyId);

    const zero = (await getSettlement(app, ann!, zeroId)).body;
    t.match(zero, { status: 'completed', poolAmount: 0, totalPoints: 4, distributed: 0, undistributed: 0 });
    t.same(
      zero.payouts.map((p: PayoutView) => [p.userId, p.amount, p.share]),
      [
        [ann!.id, 0, { numerator: '3', denominator: '4' }],
        [ben!.id, 0, { numerator: '1', denominator: '4' }],
      ],
      'a zero pool pays 0 to each payee (their share is still shown)',
    );
    t.equal(zero.resultHash, await recomputeHash(db, zeroId));
    const nothing = (await getSettlement(app, owner, nobodyId)).body;
    t.match(nothing, {
      status: 'completed',
      poolAmount: 500,
      totalPoints: 0,
      distributed: 0,
      undistributed: 500,
      payouts: [],
    });
    t.equal(nothing.resultHash, await recomputeHash(db, nobodyId));
    t.same(
      (await call(app, 'GET', `/v1/settlements/${nobodyId}/payouts.csv`, { token: owner.token })).body,
      'user_id,handle,points,amount,share_numerator,share_denominator,rounded_up,capped\n',
      'a CSV of just the header',
    );

    const memberEntries = await db
      .selectFrom('ledger_entries')
      .innerJoin('ledger_accounts', 'ledger_accounts.id', 'ledger_entries.account_id')
      .select('ledger_entries.amount')
      .where('ledger_accounts.kind', '=', 'member_balance')
      .execute();
    t.same(memberEntries, [], 'no member was credited anything');
    t.same((await call(app, 'GET', '/v1/me/balances', { token: ann!.token })).body.items, []);
    const pool = await db
      .selectFrom('ledger_accounts')
      .select(['balance'])
      .where('kind', '=', 'project_pool')
      .where('owner_id', '=', nobody.id)
      .executeTakeFirstOrThrow();
    t.equal(pool.balance, 500, 'an unpaid pool stays in the project pool account');
    for (const id of [zeroId, nobodyId])
      t.same(await eventTypes(db, id), ['settlement.requested', 'settlement.completed']);
    await assertInvariants(t, db);
  },
);
