import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { expectStatus, freshDataFolder, startReady, startService, stopService } from './embedded-service.js';
import { waitUntilReady } from './service-process.js';

// `npm start` on a machine with nothing but Node: no DATABASE_URL, no JWT_SECRET, so the service
// runs its own PostgreSQL in DATA_DIR and keeps a generated JWT secret there; no REDIS_URL, so the
// queues live in that PostgreSQL too and rate limits are counted in the process. None of the
// services CI starts is used.

t.test('npm start without DATABASE_URL: embedded PostgreSQL, the whole flow, restart, one per folder', async (t) => {
  const { dataDir, queuePrefix } = await freshDataFolder(t);

  // First start on an empty folder: initialise, create the database, migrate, serve.
  const first = await startReady(t, dataDir, queuePrefix, 'first start (initdb, createdb, migrations)');
  const messages = first.logs.map((l) => String(l.msg));
  t.ok(
    messages.some((m) => m.startsWith('DATABASE_URL is not set: embedded PostgreSQL') && m.includes(dataDir)),
    'it says where the data lives and how to use external services',
  );
  t.ok(messages.some((m) => m.startsWith('JWT_SECRET is not set: generated one in')));
  t.equal(
    statSync(join(dataDir, 'jwt-secret')).mode & 0o777,
    0o600,
    'the generated secret is readable by its owner only',
  );
  t.equal(statSync(join(dataDir, 'postgres.json')).mode & 0o777, 0o600, 'so is the database password');
  const { port: pgPort } = JSON.parse(readFileSync(join(dataDir, 'postgres.json'), 'utf8')) as { port: number };
  t.not(pgPort, 5432, 'the embedded server keeps off the default port');

  // The whole flow over HTTP: owner and member, an invite-only circle, a project with a pool.
  const register = (handle: string) =>
    expectStatus(first, 201, 'POST', '/v1/auth/register', { body: { handle, password: 'correct horse battery' } });
  const owner = await register('embedded_owner');
  const member = await register('embedded_member');
  const circle = await expectStatus(first, 201, 'POST', '/v1/circles', {
    token: owner.accessToken,
    body: { name: 'Embedded circle', joinPolicy: 'invite' },
  });
  const invite = await expectStatus(first, 201, 'POST', `/v1/circles/${circle.id}/invites`, {
    token: owner.accessToken,
    body: {},
  });
  await expectStatus(first, 201, 'POST', `/v1/circles/${circle.id}/members`, {
    token: member.accessToken,
    body: { inviteCode: invite.code },
  });
  const project = await expectStatus(first, 201, 'POST', `/v1/circles/${circle.id}/projects`, {
    token: owner.accessToken,
    body: { title: 'Embedded project', rewardPool: { amount: 1000, unit: 'credits' } },
  });
  const {
    items: [task],
  } = await expectStatus(first, 201, 'POST', `/v1/projects/${project.id}/tasks`, {
    token: owner.accessToken,
    body: { tasks: [{ title: 'Translate the welcome page', weight: 3 }] },
  });
  const claim = await expectStatus(first, 201, 'POST', `/v1/tasks/${task.id}/claims`, { token: member.accessToken });
  await expectStatus(first, 201, 'POST', `/v1/claims/${claim.id}/submissions`, {
    token: member.accessToken,
    body: { content: 'Done: the page reads well in three languages' },
  });
  await expectStatus(first, 201, 'POST', `/v1/claims/${claim.id}/reviews`, {
    token: owner.accessToken,
    body: { decision: 'accept', score: 100 },
  });
  const settlement = await expectStatus(first, 202, 'POST', `/v1/projects/${project.id}/settlements`, {
    token: owner.accessToken,
    body: {},
  });
  // The workers settle it: watch the settlement's status over the API until it leaves pending.
  let status = 'pending';
  const deadline = Date.now() + 30_000;
  while (status === 'pending' && Date.now() < deadline) {
    status = (await expectStatus(first, 200, 'GET', `/v1/settlements/${settlement.id}`, { token: owner.accessToken }))
      .status;
    if (status === 'pending') await sleep(100);
  }
  t.equal(status, 'completed', 'the workers completed the settlement');
  const statementPath = `/v1/settlements/${settlement.id}/statements/${member.user.id}`;
  const statement = await expectStatus(first, 200, 'GET', statementPath, { token: member.accessToken });
  t.match(statement, { status: 'completed', poolAmount: 1000, points: 300, payout: { amount: 1000 } });

  await stopService(t, first, 'SIGTERM', dataDir);

  // Second start on the same folder: the data and the tokens issued before are still good.
  const second = await startReady(t, dataDir, queuePrefix, 'restart on the same folder');
  t.ok(second.logs.some((l) => String(l.msg).startsWith('JWT_SECRET is not set: using the one generated earlier')));
  t.match(
    await expectStatus(second, 200, 'GET', statementPath, { token: member.accessToken }),
    { payout: { amount: 1000 } },
    'the statement survived the restart, read with an access token issued before it',
  );
  const me = await expectStatus(second, 200, 'GET', '/v1/me', { token: owner.accessToken });
  t.equal(me.handle, 'embedded_owner');
  const refreshed = await expectStatus(second, 200, 'POST', '/v1/auth/refresh', {
    body: { refreshToken: member.refreshToken },
  });
  t.ok(refreshed.accessToken, 'a refresh token issued before the restart still works');

  // A second service on the same folder while this one runs: refused at once, in one line.
  const intruder = await startService(t, dataDir, queuePrefix);
  t.not(await intruder.exited, 0, 'the second start exits non-zero');
  const lines = intruder.stderr().trim().split('\n');
  t.equal(lines.length, 1, `one line: ${intruder.stderr()}`);
  t.match(
    lines[0],
    `circle-actions: the data folder ${dataDir} is in use by another circle-actions process (pid ${second.child.pid})`,
  );
  await waitUntilReady(second, second.port, 20_000);
  t.pass('the running service is unaffected: it is still ready');

  await stopService(t, second, 'SIGINT', dataDir);
});
