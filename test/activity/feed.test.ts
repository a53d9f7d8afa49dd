import t from 'tap';
import { sql } from 'kysely';
import { buildTestApp, call, createCircle, isProblem, registerUser, type Reply, type TestUser } from '../helper.js';
import {
  addTasks,
  circleWithRoles,
  claimTask,
  completeTask,
  createProject,
  review,
  submitWork,
} from '../marketplace-helpers.js';
import { heldTransaction } from '../held-transaction.js';
import type { FastifyInstance } from 'fastify';

// The circle's activity feed: what members read, in which words, and a walk over pages that
// serves every event committed when it began exactly once, while other events keep committing.

type FeedItem = { id: string; type: string; summary: string; actor: { handle: string } | null; circleId: string };

async function walkFeed(app: FastifyInstance, user: TestUser, url: string, between?: (page: number) => Promise<void>) {
  const ids: string[] = [];
  let cursor: string | null = null;
  let page = 0;
  do {
    const sep = url.includes('?') ? '&' : '?';
    const res: Reply = await call(app, 'GET', `${url}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`, {
      token: user.token,
    });
    if (res.status !== 200) throw new Error(`feed page failed: ${res.status} ${JSON.stringify(res.body)}`);
    ids.push(...res.body.items.map((i: FeedItem) => i.id));
    cursor = res.body.nextCursor;
    if (between && cursor) await between(page);
    page++;
  } while (cursor);
  return { ids, pages: page };
}

t.test('members read their circle’s events with actor handles and summaries, never another circle’s', async (t) => {
  const { app } = await buildTestApp(t);
  const { owner, circle, member, outsider } = await circleWithRoles(app);
  const project = await createProject(app, owner, circle.id, { title: 'Reading list' });
  const [task] = await addTasks(app, owner, project.id, [{ title: 'Chapter one', weight: 2 }]);
  await completeTask(app, owner, member, task!.id, 150);

  const otherOwner = await registerUser(app, 'elsewhere');
  const other = await createCircle(app, otherOwner);
  await createProject(app, otherOwner, other.id, { title: 'Secret plans' });

  const res = await call(app, 'GET', `/v1/circles/${circle.id}/events`, { token: member.token });
  t.equal(res.status, 200);
  const items = res.body.items as FeedItem[];
  t.ok(
    items.every((i) => i.circleId === circle.id),
    'every event is of this circle',
  );
  t.notOk(JSON.stringify(items).includes('Secret plans'), 'nothing of the other circle');
  const ids = items.map((i) => Number(i.id));
  t.same(
    ids,
    [...ids].sort((a, b) => b - a),
    'newest first',
  );
  const summaries = items.map((i) => i.summary);
  t.ok(summaries.includes(`${owner.handle} accepted ${member.handle}’s work on “Chapter one” (score 150)`), 'accept');
  t.ok(summaries.includes(`${member.handle} submitted work on “Chapter one”`), 'submission');
  t.ok(summaries.includes(`${member.handle} claimed “Chapter one”`), 'claim');
  t.ok(summaries.includes(`${owner.handle} created the project “Reading list”`), 'project');
  t.ok(summaries.includes(`${member.handle} earned 300 points`), 'points: weight 2 x score 150');
  t.ok(summaries.includes('The task “Chapter one” is done'), 'completion');
  t.ok(summaries.includes(`${member.handle} joined the circle`), 'join');
  const claimed = items.find((i) => i.type === 'claim.created');
  t.equal(claimed?.actor?.handle, member.handle, 'the actor with their handle');

  const filtered = await call(app, 'GET', `/v1/circles/${circle.id}/events?types=claim.created,task.completed`, {
    token: member.token,
  });
  t.same(
    filtered.body.items.map((i: FeedItem) => i.type).sort(),
    ['claim.created', 'task.completed'],
    '?types= keeps only those types',
  );

  t.ok(
    isProblem(
      await call(app, 'GET', `/v1/circles/${other.id}/events`, { token: member.token }),
      404,
      'circle_not_found',
    ),
    'another circle’s feed is 404 for a member of this one',
  );
  t.ok(
    isProblem(await call(app, 'GET', `/v1/circles/${circle.id}/events`, { token: outsider.token }), 404),
    'outsiders get 404',
  );
  t.ok(
    isProblem(await call(app, 'GET', `/v1/circles/${circle.id}/events?types=DROP TABLE`, { token: member.token }), 400),
    'a malformed type list is 400',
  );
  t.ok(
    isProblem(
      await call(
        app,
        'GET',
        `/v1/circles/${circle.id}/events?cursor=${Buffer.from('["1:1:", 5, 6]').toString('base64url')}`,
        {
          token: member.token,
        },
      ),
      400,
      'invalid_cursor',
    ),
    'a forged cursor is 400',
  );
  t.ok(
    isProblem(
      await call(
        app,
        'GET',
        `/v1/circles/${circle.id}/events?cursor=${Buffer.from('["9:3:", 5]').toString('base64url')}`,
        {
          token: member.token,
        },
      ),
      400,
      'invalid_cursor',
    ),
    'a snapshot that cannot exist is 400, not a database error',
  );
});

t.test('a walk serves each event committed before it began exactly once while others commit', async (t) => {
  const { app, db } = await buildTestApp(t);
  const { owner, circle, member } = await circleWithRoles(app);
  const project = await createProject(app, owner, circle.id);
  await addTasks(
    app,
    owner,
    project.id,
    Array.from({ length: 3 }, (_, i) => ({ title: `Early ${i}` })),
  );
  await Promise.all(Array.from({ length: 12 }, (_, i) => addTasks(app, owner, project.id, [{ title: `Batch ${i}` }])));

  // A slow writer: its event holds an id from before the walk's first page but commits after it.
  const slow = await heldTransaction(db, async (trx) => {
    const row = await sql<{ id: number }>`
      INSERT INTO events (circle_id, type, actor_id, payload) VALUES (${circle.id}, 'invite.revoked', ${owner.id}, '{}')
      RETURNING id`.execute(trx);
    return row.rows[0]!.id;
  });
  // Written after the slow event took its id, committed before the walk begins.
  await addTasks(app, owner, project.id, [{ title: 'Later' }]);

  const committedAtStart = (
    await sql<{
      id: string;
    }>`SELECT e.id::text AS id FROM events e WHERE e.circle_id = ${circle.id} AND NOT e.recipient_only ORDER BY e.id DESC`.execute(
      db,
    )
  ).rows.map((r) => r.id);
  t.notOk(committedAtStart.includes(String(slow.value)), 'the slow event is not committed yet');

  let arrived = 0;
  const walk = await walkFeed(app, member, `/v1/circles/${circle.id}/events?limit=4`, async (page) => {
    if (page === 0) await slow.commit(); // a lower id commits behind the cursor
    await addTasks(app, owner, project.id, [{ title: `During ${page}` }]); // and newer ones on top
    arrived++;
  });
  t.ok(walk.pages >= 5, `walked ${walk.pages} pages`);
  t.ok(arrived >= 4, `${arrived} events committed during the walk`);
  t.equal(new Set(walk.ids).size, walk.ids.length, 'no event served twice');
  t.same(walk.ids, committedAtStart, 'exactly the events committed when the walk began, newest first');

  const fresh = await walkFeed(app, member, `/v1/circles/${circle.id}/events?limit=200`);
  t.ok(fresh.ids.includes(String(slow.value)), 'a new walk shows the late event in its place');
  t.equal(fresh.ids.length, committedAtStart.length + 1 + arrived, 'and everything that arrived');
});

t.test('lists what arrives between reviews as the reviewer acts, in the right words', async (t) => {
  const { app } = await buildTestApp(t);
  const { owner, circle, admin, member } = await circleWithRoles(app);
  const project = await createProject(app, owner, circle.id);
  const [a, b] = await addTasks(app, owner, project.id, [{ title: 'Draft' }, { title: 'Edit' }]);
  const first = await claimTask(app, member, a!.id);
  await submitWork(app, member, first.body.id);
  await review(app, admin, first.body.id, { decision: 'revise', feedback: 'Shorter please' });
  await submitWork(app, member, first.body.id);
  await review(app, admin, first.body.id, { decision: 'reject', feedback: 'Off topic' });
  const second = await claimTask(app, member, b!.id);
  await call(app, 'POST', `/v1/claims/${second.body.id}/revoke`, {
    token: owner.token,
    body: { reason: 'Reassigned' },
  });
  const res = await call(
    app,
    'GET',
    `/v1/circles/${circle.id}/events?types=review.created,claim.revoked,submission.created`,
    {
      token: member.token,
    },
  );
  t.same(
    res.body.items.map((i: FeedItem) => i.summary),
    [
      `${owner.handle} revoked ${member.handle}’s claim on “Edit”: Reassigned`,
      `${admin.handle} rejected ${member.handle}’s work on “Draft”`,
      `${member.handle} submitted work on “Draft” (revision 2)`,
      `${admin.handle} sent ${member.handle}’s work on “Draft” back for revision`,
      `${member.handle} submitted work on “Draft”`,
    ],
  );
});
