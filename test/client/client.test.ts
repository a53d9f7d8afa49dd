import { randomBytes, randomUUID } from 'node:crypto';
import t from 'tap';
import { ProblemError, createCircleActionsClient, unwrap } from '../../src/client/index.js';
import { onEachQueueBackend } from '../helper.js';
import { startService } from '../running-service.js';

// The typed client against the real service, started as an operator starts it: a short story with
// its idempotent replay and its typed problems.

onEachQueueBackend(t, 'the typed client drives the service over HTTP', async (t, backend) => {
  const { baseUrl } = await startService(t, backend);
  const suffix = randomBytes(3).toString('hex');
  const owner = createCircleActionsClient(baseUrl);

  // Without a token: a problem, typed, whose type is the code's page on the service.
  const anonymous = await owner.GET('/v1/me');
  t.equal(anonymous.response.status, 401);
  t.equal(anonymous.error?.code, 'missing_token');
  const page = await fetch(new URL(anonymous.error!.type, baseUrl));
  t.equal(page.status, 200);
  t.match(await page.text(), 'Authorization: Bearer');

  const session = await unwrap(
    owner.POST('/v1/auth/register', { body: { handle: `owner_${suffix}`, password: 'correct horse battery' } }),
  );
  owner.setToken(session.accessToken);
  t.equal((await unwrap(owner.GET('/v1/me'))).handle, `owner_${suffix}`);

  // The same Idempotency-Key replays the first answer; with another body it is refused, typed.
  const key = randomUUID();
  const create = (name: string) =>
    owner.POST('/v1/circles', { params: { header: { 'Idempotency-Key': key } }, body: { name, joinPolicy: 'open' } });
  const first = await create('每日读书会');
  const replay = await create('每日读书会');
  t.equal(first.response.status, 201);
  t.equal(replay.response.headers.get('idempotent-replayed'), 'true');
  t.equal(replay.data?.id, first.data?.id);
  const reused = await unwrap(create('另一个圈子')).catch((err: unknown) => err);
  t.ok(reused instanceof ProblemError);
  t.equal((reused as ProblemError).status, 422);
  t.equal((reused as ProblemError).code, 'idempotency_key_reused');
  const circleId = first.data!.id;

  const project = await unwrap(
    owner.POST('/v1/circles/{circleId}/projects', {
      params: { path: { circleId } },
      body: {
        title: '翻译第一章',
        rewardPool: { amount: 1000, unit: 'points' },
        tasks: [{ title: '翻译第 1 段', weight: 3 }],
      },
    }),
  );

  const member = createCircleActionsClient(baseUrl);
  const memberSession = await unwrap(
    member.POST('/v1/auth/register', { body: { handle: `member_${suffix}`, password: 'correct horse battery' } }),
  );
  member.setToken(memberSession.accessToken);
  await unwrap(member.POST('/v1/circles/{circleId}/members', { params: { path: { circleId } }, body: {} }));

  const claim = await unwrap(
    member.POST('/v1/projects/{projectId}/claims/next', { params: { path: { projectId: project.id } }, body: {} }),
  );
  t.equal(claim.status, 'active');
  const none = await member.POST('/v1/projects/{projectId}/claims/next', {
    params: { path: { projectId: project.id } },
    body: {},
  });
  t.equal(none.error?.code, 'no_claimable_task');
  await unwrap(
    member.POST('/v1/claims/{claimId}/submissions', {
      params: { path: { claimId: claim.id } },
      body: { content: '译文' },
    }),
  );
  const review = await unwrap(
    owner.POST('/v1/claims/{claimId}/reviews', {
      params: { path: { claimId: claim.id } },
      body: { decision: 'accept', score: 100 },
    }),
  );
  t.equal(review.decision, 'accept');
  const contributions = await unwrap(
    member.GET('/v1/projects/{projectId}/contributions', { params: { path: { projectId: project.id } } }),
  );
  t.match(contributions.items, [{ userId: memberSession.user.id, points: 300 }]);
});
