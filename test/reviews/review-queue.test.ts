import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { checkInvariants } from '../../src/audit/invariants.js';
import { buildTestApp, call, createCircle, isProblem, registerUser, type TestUser } from '../helper.js';
import { addTasks, claimNext, createProject, joinMembers, review, submitWork } from '../marketplace-helpers.js';

// GET /v1/circles/:circleId/review-queue: everything waiting for a reviewer, oldest submission
// first, enough to review it without looking anything up elsewhere.

interface QueueItem {
  claimId: string;
  taskId: string;
  taskTitle: string;
  projectId: string;
  userId: string;
  handle: string;
  submissionId: string;
  revision: number;
  submittedAt: string;
  autoAcceptAt: string;
  submissionsUrl: string;
}

/** Walks the whole queue page by page; `between` runs after each page (to interleave writes). */
async function walkQueue(
  app: FastifyInstance,
  reviewer: TestUser,
  circleId: string,
  limit: number,
  between: () => Promise<void> = async () => {},
) {
  const items: QueueItem[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const query: string = cursor ? `&cursor=${cursor}` : '';
    const page = await call(app, 'GET', `/v1/circles/${circleId}/review-queue?limit=${limit}${query}`, {
      token: reviewer.token,
    });
    if (page.status !== 200) throw new Error(`queue page failed: ${page.status} ${JSON.stringify(page.body)}`);
    items.push(...page.body.items);
    cursor = page.body.nextCursor;
    pages++;
    await between();
  } while (cursor);
  return { items, pages };
}

async function claimAndSubmit(app: FastifyInstance, member: TestUser, projectId: string, content = 'The work') {
  const claim = await claimNext(app, member, projectId);
  if (claim.status !== 201) throw new Error(`claim failed: ${claim.status} ${JSON.stringify(claim.body)}`);
  const submitted = await submitWork(app, member, claim.body.id, content);
  if (submitted.status !== 201) throw new Error(`submit failed: ${submitted.status} ${JSON.stringify(submitted.body)}`);
  return claim.body.id as string;
}

t.test('an owner finds every submitted claim through the queue and reviews them all from it', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const members = await joinMembers(app, circle.id, 5);
  const outsider = await registerUser(app, 'outsider');
  const design = await createProject(app, owner, circle.id, { title: 'Design', reviewWindowSeconds: 3600 });
  const docs = await createProject(app, owner, circle.id, { title: 'Docs', reviewWindowSeconds: 7200 });
  await addTasks(
    app,
    owner,
    design.id,
    Array.from({ length: 8 }, (_, i) => ({ title: `Design ${i}` })),
  );
  await addTasks(
    app,
    owner,
    docs.id,
    Array.from({ length: 8 }, (_, i) => ({ title: `Docs ${i}` })),
  );

  // Waiting: one claim per member in each project. Not waiting: an active claim, a released one.
  const waiting = new Set<string>();
  for (const member of members) {
    waiting.add(await claimAndSubmit(app, member, design.id));
    waiting.add(await claimAndSubmit(app, member, docs.id));
  }
  const active = await claimNext(app, members[0]!, design.id);
  const released = await claimNext(app, members[1]!, design.id);
  await call(app, 'POST', `/v1/claims/${released.body.id}/release`, { token: members[1]!.token });
  // A revised and resubmitted claim is waiting again, with its second revision, at the queue's end.
  const [revisedId] = waiting;
  t.equal(
    (await review(app, owner, revisedId!, { decision: 'revise', feedback: 'Add sources' })).status,
    201,
    'a revise',
  );
  t.equal((await submitWork(app, members[0]!, revisedId!, 'With sources')).status, 201, 'resubmitted');

  // Managers only; outsiders do not learn the circle exists.
  t.ok(isProblem(await call(app, 'GET', `/v1/circles/${circle.id}/review-queue`, { token: members[0]!.token }), 403));
  t.ok(
    isProblem(
      await call(app, 'GET', `/v1/circles/${circle.id}/review-queue`, { token: outsider.token }),
      404,
      'circle_not_found',
    ),
  );

  const { items, pages } = await walkQueue(app, owner, circle.id, 3);
  t.equal(pages, 4, '10 items in pages of 3');
  t.same(new Set(items.map((i) => i.claimId)), waiting, 'every submitted claim, nothing else');
  t.notOk(items.some((i) => i.claimId === active.body.id || i.claimId === released.body.id));
  const times = items.map((i) => Date.parse(i.submittedAt));
  t.same(
    times,
    [...times].sort((a, b) => a - b),
    'oldest submission first',
  );
  const last = items[items.length - 1]!;
  t.equal(last.claimId, revisedId, 'the resubmitted claim queues by its latest submission');
  t.equal(last.revision, 2);
  for (const item of items) {
    const project = item.projectId === design.id ? design : docs;
    const member = members.find((m) => m.id === item.userId)!;
    t.equal(item.handle, member.handle, 'the claimant by handle');
    t.match(item.taskTitle, item.projectId === design.id ? /^Design / : /^Docs /);
    t.equal(
      Date.parse(item.autoAcceptAt) - Date.parse(item.submittedAt),
      project.reviewWindowSeconds * 1000,
      "auto-accepted when the project's review window closes",
    );
  }

  // Reviewing everything, with nothing but what the queue gave.
  for (const item of items) {
    const history = await call(app, 'GET', item.submissionsUrl, { token: owner.token });
    t.equal(history.status, 200, 'the link leads to the submissions');
    const latest = history.body.items[history.body.items.length - 1];
    t.equal(latest.id, item.submissionId, 'the latest one is the one under review');
    t.equal(latest.revision, item.revision);
    const decided = await review(app, owner, item.claimId, { decision: 'accept' });
    t.equal(decided.status, 201, `accepted ${item.taskTitle}`);
    t.equal(decided.body.submissionId, item.submissionId);
  }
  const after = await call(app, 'GET', `/v1/circles/${circle.id}/review-queue`, { token: owner.token });
  t.same(after.body, { items: [], nextCursor: null }, 'nothing left to review');
  t.same(
    (await checkInvariants(db)).filter((r) => r.violations > 0),
    [],
    'invariants hold',
  );
});

t.test('a settled or cancelled project leaves the queue; a forged cursor is a 400', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [member] = await joinMembers(app, circle.id, 1);
  const kept = await createProject(app, owner, circle.id, { title: 'Kept' });
  const dropped = await createProject(app, owner, circle.id, { title: 'Dropped' });
  await addTasks(app, owner, kept.id, [{ title: 'K' }]);
  await addTasks(app, owner, dropped.id, [{ title: 'D' }]);
  const keptClaim = await claimAndSubmit(app, member!, kept.id);
  await claimAndSubmit(app, member!, dropped.id);
  t.equal(
    (await call(app, 'PATCH', `/v1/projects/${dropped.id}`, { token: owner.token, body: { status: 'cancelled' } }))
      .status,
    200,
  );
  const queue = await call(app, 'GET', `/v1/circles/${circle.id}/review-queue`, { token: owner.token });
  t.same(
    queue.body.items.map((i: QueueItem) => i.claimId),
    [keptClaim],
  );
  const forged = await call(app, 'GET', `/v1/circles/${circle.id}/review-queue?cursor=bm90LWEtY3Vyc29y`, {
    token: owner.token,
  });
  t.ok(isProblem(forged, 400, 'invalid_cursor'));
});

t.test('the queue pages without duplicates or gaps while 20 members submit', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const members = await joinMembers(app, circle.id, 20);
  const project = await createProject(app, owner, circle.id);
  await addTasks(
    app,
    owner,
    project.id,
    Array.from({ length: 60 }, (_, i) => ({ title: `Task ${i}` })),
  );

  const before = new Set<string>();
  for (const member of members) before.add(await claimAndSubmit(app, member, project.id, 'First'));

  // Every member submits twice more while the owner pages through; each page is read while those
  // requests are in flight (the walk and the submissions share the event loop and the pool).
  let pagesDuringSubmissions = 0;
  let submitting = true;
  const submissions = Promise.all(
    members.map(async (m) => {
      await claimAndSubmit(app, m, project.id, 'Second');
      await claimAndSubmit(app, m, project.id, 'Third');
    }),
  ).finally(() => {
    submitting = false;
  });
  const walk = await walkQueue(app, owner, circle.id, 3, async () => {
    if (submitting) pagesDuringSubmissions++;
  });
  await submissions;
  t.ok(pagesDuringSubmissions > 0, `${pagesDuringSubmissions} pages were read while submissions ran`);

  const seen = walk.items.map((i) => i.claimId);
  t.equal(new Set(seen).size, seen.length, 'no claim twice');
  for (const id of before) t.equal(seen.filter((s) => s === id).length, 1, 'each claim submitted before the walk once');
  const times = walk.items.map((i) => Date.parse(i.submittedAt));
  t.same(
    times,
    [...times].sort((a, b) => a - b),
    'still oldest first',
  );

  const final = await walkQueue(app, owner, circle.id, 7);
  t.equal(final.items.length, 60, 'afterwards: all 60 submissions');
  t.equal(new Set(final.items.map((i) => i.claimId)).size, 60);
});

t.test('the queue walks its index on a circle with a long history', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [member] = await joinMembers(app, circle.id, 1);
  const project = await createProject(app, owner, circle.id);
  const [task] = await addTasks(app, owner, project.id, [{ title: 'One' }]);
  await claimAndSubmit(app, member!, project.id);
  // 20,000 finished claims of the same circle: the history the queue must not read.
  await sql`
    INSERT INTO claims (circle_id, project_id, task_id, user_id, status, expires_at)
    SELECT ${circle.id}::uuid, ${project.id}::uuid, ${task!.id}::uuid, ${member!.id}::uuid, 'rejected', now()
    FROM generate_series(1, 20000)`.execute(db);
  await sql`ANALYZE claims`.execute(db);
  const plan = await sql<{ 'QUERY PLAN': string }>`
    EXPLAIN SELECT c.id FROM claims c
    WHERE c.circle_id = ${circle.id}::uuid AND c.status = 'submitted'
    ORDER BY c.updated_at, c.id LIMIT 51`.execute(db);
  const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
  t.match(text, /claims_review_queue_idx/, 'walks the review-queue index');
  t.notMatch(text, /Sort/, 'in order, without sorting');
  const queue = await call(app, 'GET', `/v1/circles/${circle.id}/review-queue`, { token: owner.token });
  t.equal(queue.body.items.length, 1);
});
