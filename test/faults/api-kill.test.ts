import t from 'tap';
import { REDIS_URL, createCircle, registerUser } from '../helper.js';
import { createProject, joinMembers } from '../marketplace-helpers.js';
import { SEED, assertInvariants, faultApp, http, rng, serviceEnv, startService, summary, until } from './cluster.js';

// Two API processes and two workers on one database; 100 members claim and submit over HTTP,
// spread across both APIs, while one API process is SIGKILLed. Whatever the service acknowledged
// (201) must be in the database, no task may exceed its slots, and the other API keeps serving.

t.comment(`FAULT_SEED=${SEED}`);

t.test('SIGKILL one of two API processes under 100 claiming and submitting clients', async (t) => {
  const random = rng(SEED);
  const env = await faultApp(t);
  const setup = env.app;
  const owner = await registerUser(setup, 'owner');
  const circle = await createCircle(setup, owner);
  const tasks = [
    ...Array.from({ length: 150 }, (_, i) => ({ title: `Single ${i}` })),
    ...Array.from({ length: 50 }, (_, i) => ({ title: `Pair ${i}`, slots: 2 })),
  ];
  const project = await createProject(setup, owner, circle.id, { tasks });
  const members = await joinMembers(setup, circle.id, 100);

  const envVars = serviceEnv(env, REDIS_URL);
  const apis = [await startService(t, 'api', envVars, 'api-a'), await startService(t, 'api', envVars, 'api-b')];
  await startService(t, 'worker', envVars, 'worker-a');
  await startService(t, 'worker', envVars, 'worker-b');

  const ackedClaims = new Map<string, string>(); // claim id -> member id
  const ackedSubmissions = new Map<string, string>(); // submission id -> claim id
  let sent = 0;
  let networkErrors = 0;
  let servedBySurvivorAfterKill = 0;
  let submissionsSent = 0;
  const statuses: Record<number, number> = {};
  // Every answer a client may not get: any 5xx (a 502-504 as much as a 500), and any error that
  // is not problem+json (what a proxy or a crashed handler would send).
  const serverErrors: string[] = [];
  const nonProblemErrors: string[] = [];
  let killedAt = 0;
  const victim = random() < 0.5 ? 0 : 1;
  const survivor = 1 - victim;
  const deadline = Date.now() + 20_000;

  const client = async (i: number) => {
    const member = members[i]!;
    let api = i % 2;
    const send = async (method: string, path: string, body?: unknown) => {
      for (let attempt = 0; attempt < 3; attempt++) {
        const res = await http(apis[api]!.url, method, path, { token: member.token, body, timeoutMs: 10_000 });
        sent++;
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        const answer = `${method} ${path} ${res.status} ${res.type} ${JSON.stringify(res.body).slice(0, 200)}`;
        if (res.status >= 500) serverErrors.push(answer);
        if (res.status >= 400 && !res.type.startsWith('application/problem+json')) nonProblemErrors.push(answer);
        if (res.status !== 0) {
          if (killedAt && api === survivor) servedBySurvivorAfterKill++;
          return res;
        }
        // The process is gone (or the connection died with it): a real client fails over.
        networkErrors++;
        api = 1 - api;
      }
      return { status: 0, body: null, type: '' };
    };
    for (let round = 0; round < 4 && Date.now() < deadline; round++) {
      const claim = await send('POST', `/v1/projects/${project.id}/claims/next`, {});
      if (claim.status !== 201) {
        if (claim.body?.code === 'no_claimable_task') return;
        continue;
      }
      ackedClaims.set(claim.body.id, member.id);
      submissionsSent++;
      const submission = await send('POST', `/v1/claims/${claim.body.id}/submissions`, {
        content: `Work of ${member.handle} round ${round}`,
      });
      if (submission.status === 201) ackedSubmissions.set(submission.body.id, claim.body.id);
    }
  };

  const killDelay = 200 + Math.floor(random() * 800);
  const killer = (async () => {
    await new Promise((resolve) => setTimeout(resolve, killDelay));
    killedAt = Date.now();
    await apis[victim]!.kill('SIGKILL');
  })();
  await Promise.all([...members.map((_, i) => client(i)), killer]);
  t.notOk(apis[victim]!.alive, `${apis[victim]!.name} was killed ${killDelay} ms into the load`);
  t.ok(
    servedBySurvivorAfterKill > 0,
    `${apis[survivor]!.name} kept serving after the kill (${servedBySurvivorAfterKill} answers)`,
  );
  t.same(serverErrors.slice(0, 20), [], `no 5xx of any kind (${serverErrors.length}): ${JSON.stringify(statuses)}`);
  t.same(nonProblemErrors.slice(0, 20), [], `every error answer is problem+json (${nonProblemErrors.length} not)`);
  t.ok(submissionsSent > 0, `the submission loop ran: ${submissionsSent} submissions sent`);
  t.ok(ackedSubmissions.size > 0, `${ackedSubmissions.size} submissions acknowledged`);

  // Every acknowledged claim and submission is in the database.
  const claimRows = await env.db.selectFrom('claims').select(['id', 'user_id', 'status']).execute();
  const byId = new Map(claimRows.map((c) => [c.id, c]));
  const missingClaims = [...ackedClaims].filter(([id, userId]) => byId.get(id)?.user_id !== userId);
  t.same(missingClaims, [], `all ${ackedClaims.size} acknowledged claims are stored`);
  const submissionRows = await env.db.selectFrom('submissions').select(['id', 'claim_id']).execute();
  const subs = new Map(submissionRows.map((s) => [s.id, s.claim_id]));
  const missingSubs = [...ackedSubmissions].filter(([id, claimId]) => subs.get(id) !== claimId);
  t.same(missingSubs, [], `all ${ackedSubmissions.size} acknowledged submissions are stored`);
  for (const claimId of ackedSubmissions.values()) {
    if (byId.get(claimId)?.status !== 'submitted')
      t.fail(`claim ${claimId} of an acknowledged submission is ${byId.get(claimId)?.status}`);
  }
  t.ok(ackedClaims.size >= 50, `${ackedClaims.size} claims acknowledged`);

  // The survivor still answers reads and writes; a restarted process joins in.
  const still = await http(apis[survivor]!.url, 'GET', `/v1/projects/${project.id}`, { token: owner.token });
  t.equal(still.status, 200);
  const restarted = await startService(t, 'api', envVars, `${apis[victim]!.name}-restarted`);
  const ready = await until(
    'the restarted API to be ready',
    async () => (await http(restarted.url, 'GET', '/readyz')).status === 200,
    20_000,
  );
  t.ok(ready);

  const violations = await assertInvariants(t, env.db, 'API process killed under load');
  summary(t, 'api-kill', {
    seed: SEED,
    clients: members.length,
    requests: sent,
    networkErrors,
    acknowledgedClaims: ackedClaims.size,
    submissionsSent,
    acknowledgedSubmissions: ackedSubmissions.size,
    serverErrors: serverErrors.length,
    nonProblemErrors: nonProblemErrors.length,
    storedClaims: claimRows.length,
    faults: 1,
    violations,
  });
});
