import t from 'tap';
import { sql } from 'kysely';
import { buildTestApp, call, type TestUser } from '../helper.js';
import {
  addTasks,
  circleWithRoles,
  claimTask,
  completeTask,
  createProject,
  review,
  submitWork,
} from '../marketplace-helpers.js';
import { requestSettlementId } from '../settlement-helpers.js';
import { settleProject } from '../../src/settlements/settle-project.js';
import { sweepOverdueClaims } from '../../src/claims/claim-expiry.job.js';
import type { FastifyInstance } from 'fastify';

// GET /v1/me/events: what concerns the caller across their circles (reviews, revisions, expiries,
// revocations, payouts), nobody else's, walked without repeats or gaps while more arrives.

type Item = {
  id: string;
  type: string;
  summary: string;
  circleId: string;
  recipientId: string;
  data: Record<string, unknown>;
};

async function inboxOf(app: FastifyInstance, user: TestUser, query = '') {
  const res = await call(app, 'GET', `/v1/me/events${query}`, { token: user.token });
  if (res.status !== 200) throw new Error(`inbox failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { items: Item[]; nextCursor: string | null };
}

t.test(
  'the inbox lists the caller’s reviews, revisions, revocations, expiries and payouts across circles',
  async (t) => {
    const { app, db } = await buildTestApp(t);
    const { owner, circle, admin, members } = await circleWithRoles(app, { members: 2 });
    const [ann, bob] = members as [TestUser, TestUser];
    const second = await circleWithRoles(app);
    await call(app, 'POST', `/v1/circles/${second.circle.id}/members`, { token: ann.token, body: {} });

    const project = await createProject(app, owner, circle.id, {
      title: 'Garden',
      rewardPool: { amount: 100, unit: 'CNY' },
    });
    const [accepted, revised, revoked, expiring, bobs] = await addTasks(app, owner, project.id, [
      { title: 'Plant' },
      { title: 'Water' },
      { title: 'Weed' },
      { title: 'Harvest' },
      { title: 'Bob’s task' },
    ]);
    await completeTask(app, owner, ann, accepted!.id);
    const rev = await claimTask(app, ann, revised!.id);
    await submitWork(app, ann, rev.body.id);
    await review(app, admin, rev.body.id, { decision: 'revise', feedback: 'More water' });
    const rvk = await claimTask(app, ann, revoked!.id);
    await call(app, 'POST', `/v1/claims/${rvk.body.id}/revoke`, { token: owner.token, body: { reason: 'Too late' } });
    const exp = await claimTask(app, ann, expiring!.id);
    await sql`UPDATE claims SET expires_at = now() - interval '1 second' WHERE id = ${exp.body.id}`.execute(db);
    t.equal(await sweepOverdueClaims({ db }), 1, 'the lease expires');
    await completeTask(app, owner, bob, bobs!.id);
    // Work in the second circle
    const elsewhere = await createProject(app, second.owner, second.circle.id, { title: 'Elsewhere' });
    const [far] = await addTasks(app, second.owner, elsewhere.id, [{ title: 'Far task' }]);
    await completeTask(app, second.owner, ann, far!.id);

    await call(app, 'PATCH', `/v1/projects/${project.id}`, { token: owner.token, body: { status: 'closed' } });
    const settlementId = await requestSettlementId(app, owner, project.id);
    t.equal(await settleProject(db, settlementId), 'completed');

    const inbox = await inboxOf(app, ann);
    t.ok(
      inbox.items.every((i) => i.recipientId === ann.id),
      'only events naming ann',
    );
    t.same(
      inbox.items.map((i) => i.type),
      ['payout.credited', 'review.created', 'claim.expired', 'claim.revoked', 'review.created', 'review.created'],
      'newest first',
    );
    t.same(
      inbox.items.map((i) => i.summary),
      [
        `${ann.handle} was paid 50 CNY for “Garden”`,
        `${second.owner.handle} accepted ${ann.handle}’s work on “Far task” (score 100)`,
        `${ann.handle}’s lease on “Harvest” expired`,
        `${owner.handle} revoked ${ann.handle}’s claim on “Weed”: Too late`,
        `${admin.handle} sent ${ann.handle}’s work on “Water” back for revision`,
        `${owner.handle} accepted ${ann.handle}’s work on “Plant” (score 100)`,
      ],
    );
    t.same(new Set(inbox.items.map((i) => i.circleId)), new Set([circle.id, second.circle.id]), 'across circles');
    t.match(inbox.items[0]!.data, { settlementId, amount: 50, unit: 'CNY', points: 100 });

    const bobsInbox = await inboxOf(app, bob);
    t.same(
      bobsInbox.items.map((i) => i.type),
      ['payout.credited', 'review.created'],
      'bob sees his own, none of ann’s',
    );
    t.same(
      (await inboxOf(app, ann, '?types=claim.expired,claim.revoked')).items.map((i) => i.type),
      ['claim.expired', 'claim.revoked'],
    );

    const feed = await call(app, 'GET', `/v1/circles/${circle.id}/events?limit=200`, { token: bob.token });
    t.notOk(
      feed.body.items.some((i: Item) => i.type === 'payout.credited'),
      'payout notices stay out of the circle feed',
    );
    t.ok(
      feed.body.items.some((i: Item) => i.type === 'claim.expired'),
      'while expiries, reviews and revocations are circle events too',
    );
    const indexed = await sql<{ plan: string }>`
    EXPLAIN SELECT id FROM events WHERE recipient_id = ${ann.id}::uuid ORDER BY id DESC LIMIT 51`.execute(db);
    t.match(JSON.stringify(indexed.rows), /events_recipient_idx/, 'the inbox is a walk along events_recipient_idx');
  },
);

t.test('an inbox walk has no repeats or gaps while new events for the caller arrive', async (t) => {
  const { app } = await buildTestApp(t);
  const { owner, circle, member } = await circleWithRoles(app);
  const project = await createProject(app, owner, circle.id);
  const tasks = await addTasks(
    app,
    owner,
    project.id,
    Array.from({ length: 14 }, (_, i) => ({ title: `T${i}` })),
  );
  for (const task of tasks.slice(0, 9)) await completeTask(app, owner, member, task.id);
  const before = (await inboxOf(app, member, '?limit=200')).items.map((i) => i.id);
  t.equal(before.length, 9);

  const served: string[] = [];
  let cursor: string | null = null;
  let arriving = 9;
  do {
    const page = await inboxOf(app, member, `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    served.push(...page.items.map((i) => i.id));
    cursor = page.nextCursor;
    if (cursor && arriving < tasks.length) await completeTask(app, owner, member, tasks[arriving++]!.id);
  } while (cursor);
  t.ok(arriving > 9, `${arriving - 9} reviews arrived during the walk`);
  t.same(served, before, 'the walk served exactly the events there when it began, once each');
  t.equal((await inboxOf(app, member, '?limit=200')).items.length, arriving, 'a new walk has the rest');
});
