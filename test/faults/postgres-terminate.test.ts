import t from 'tap';
import pg from 'pg';
import { REDIS_URL, createCircle, registerUser } from '../helper.js';
import { createProject, joinMembers } from '../marketplace-helpers.js';
import {
  SEED,
  actorRng,
  assertInvariants,
  faultApp,
  http,
  serviceEnv,
  startService,
  summary,
  until,
} from './cluster.js';

// Every connection of the scenario's database is terminated again and again (pg_terminate_backend,
// the machine's Postgres itself is never restarted) while two APIs serve reads and claims and two
// workers run. While connections die the service answers 503 problem+json service_unavailable,
// never a 500, and it recovers by itself: no process is restarted.

// Each client and the killer draw from their own generator derived from the seed (actorRng), so
// FAULT_SEED=<seed> replays every choice: which API, read or claim, how long between kill rounds.
t.comment(`FAULT_SEED=${SEED}`);

t.test('Postgres connections terminated under load: 503 while they die, recovery without a restart', async (t) => {
  const env = await faultApp(t);
  const setup = env.app;
  const owner = await registerUser(setup, 'owner');
  const circle = await createCircle(setup, owner);
  const project = await createProject(setup, owner, circle.id, {
    tasks: Array.from({ length: 300 }, (_, i) => ({ title: `Task ${i}` })),
  });
  const members = await joinMembers(setup, circle.id, 30);
  await setup.close();

  const envVars = serviceEnv(env, REDIS_URL);
  const apis = [await startService(t, 'api', envVars, 'api-a'), await startService(t, 'api', envVars, 'api-b')];
  await startService(t, 'worker', envVars, 'worker-a');
  await startService(t, 'worker', envVars, 'worker-b');

  const dbName = new URL(env.config.databaseUrl).pathname.slice(1);
  const killer = new pg.Client({ connectionString: env.config.databaseUrl.replace(`/${dbName}`, '/postgres') });
  await killer.connect();
  t.teardown(() => killer.end());

  const statuses: Record<string, number> = {};
  let sent = 0;
  let terminated = 0;
  let rounds = 0;
  let storm = true;
  const bad: string[] = [];
  const load = async (i: number) => {
    const m = members[i]!;
    const random = actorRng(SEED, i);
    while (storm) {
      const api = apis[Math.floor(random() * 2)]!.url;
      const read = random() < 0.6;
      const res = read
        ? await http(api, 'GET', `/v1/projects/${project.id}/tasks?limit=10`, { token: m.token, timeoutMs: 10_000 })
        : await http(api, 'POST', `/v1/projects/${project.id}/claims/next`, {
            token: m.token,
            body: {},
            timeoutMs: 10_000,
          });
      sent++;
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (
        res.status >= 500 &&
        !(
          res.status === 503 &&
          res.type.startsWith('application/problem+json') &&
          res.body?.code === 'service_unavailable'
        )
      ) {
        bad.push(`${read ? 'read' : 'claim'} ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      }
      if (res.status === 0) {
        bad.push(`${read ? 'read' : 'claim'}: no answer (${JSON.stringify(res.body)})`);
        await new Promise((resolve) => setTimeout(resolve, 50)); // a dead process: don't spin
      }
    }
  };
  const stormMs = 4_000;
  const clients = members.map((_, i) => load(i));
  const killerRandom = actorRng(SEED, members.length);
  const started = Date.now();
  while (Date.now() - started < stormMs) {
    const res = await killer.query(
      'SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()) x',
      [dbName],
    );
    terminated += res.rows[0].n;
    rounds++;
    await new Promise((resolve) => setTimeout(resolve, 100 + Math.floor(killerRandom() * 200)));
  }
  storm = false;
  await Promise.all(clients);

  t.ok(terminated > 0, `${terminated} backends terminated in ${rounds} rounds`);
  for (const api of apis)
    t.ok(
      api.alive,
      `${api.name} survived the storm${api.alive ? '' : `: exit ${api.child.exitCode} ${api.stderr().slice(-1500)} ${JSON.stringify(api.logs.filter((l) => (l.level ?? 0) >= 50).slice(-2)).slice(0, 3000)}`}`,
    );
  t.same(bad.slice(0, 20), [], `every failure during the storm was a 503 problem+json: ${JSON.stringify(statuses)}`);

  // Recovery by itself: within a few seconds every API answers reads and writes again.
  for (const api of apis) {
    await until(
      `${api.name} to serve again`,
      async () => (await http(api.url, 'GET', `/v1/projects/${project.id}`, { token: owner.token })).status === 200,
      15_000,
      200,
    );
    const ready = await http(api.url, 'GET', '/readyz');
    t.equal(ready.status, 200, `${api.name} is ready again without a restart`);
    const claim = await http(api.url, 'POST', `/v1/projects/${project.id}/claims/next`, {
      token: owner.token,
      body: {},
    });
    t.ok(claim.status === 201 || claim.status === 409, `${api.name} takes writes again (${claim.status})`);
  }
  const violations = await until(
    'the invariant check to run',
    async () => {
      try {
        return { n: await assertInvariants(t, env.db, 'Postgres connections terminated') };
      } catch {
        return undefined; // the test's own pooled connections were terminated too; the next try reconnects
      }
    },
    10_000,
    200,
  );
  summary(t, 'postgres-terminate', {
    seed: SEED,
    requests: sent,
    backendsTerminated: terminated,
    killRounds: rounds,
    served503: statuses[503] ?? 0,
    server500: statuses[500] ?? 0,
    violations: violations?.n ?? -1,
  });
});
