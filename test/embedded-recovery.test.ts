import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { createServer, type AddressInfo } from 'node:net';
import { processesMentioning, stillRunning } from './process-tree.js';
import {
  expectStatus,
  freshDataFolder,
  serviceProcesses,
  startReady,
  startService,
  stopService,
} from './embedded-service.js';

// Embedded mode when things go wrong. A service killed outright (SIGKILL, the OOM killer) leaves
// its lock file and its PostgreSQL behind: the next start on the folder must recognise both as
// stale, stop the old server and carry on with the data. A start-up that fails after the embedded
// server started must stop it again.

t.test(
  'after a crash the next start takes the folder over and stops the server left behind; a failed start stops it too',
  async (t) => {
    const { dataDir, queuePrefix } = await freshDataFolder(t);

    const crashed = await startReady(t, dataDir, queuePrefix, 'first start');
    const user = await expectStatus(crashed, 201, 'POST', '/v1/auth/register', {
      body: { handle: 'before_the_crash', password: 'correct horse battery' },
    });
    const processes = serviceProcesses(crashed);
    await crashed.kill('SIGKILL');
    const leftBehind = stillRunning(processes);
    t.ok(
      leftBehind.some((p) => p.command === 'postgres'),
      'the killed service left its PostgreSQL running and its lock in place',
    );
    t.ok(existsSync(join(dataDir, 'circle-actions.lock')));
    t.teardown(() => {
      // Should the takeover fail, do not leave the orphan running.
      for (const p of stillRunning(leftBehind)) process.kill(p.pid, 'SIGKILL');
    });

    const next = await startReady(t, dataDir, queuePrefix, 'start after the crash');
    const messages = next.logs.map((l) => String(l.msg));
    t.ok(messages.includes('took over the data folder from a process that is gone'));
    t.ok(messages.includes('stopping the embedded PostgreSQL a crashed run left behind'));
    t.same(stillRunning(leftBehind), [], 'the server left behind was stopped');
    t.equal((await expectStatus(next, 200, 'GET', '/v1/me', { token: user.accessToken })).handle, 'before_the_crash');

    await stopService(t, next, 'SIGTERM', dataDir);

    // A start-up that fails once the embedded server runs (here: the API port is taken) stops the
    // server again and frees the folder.
    const squatter = createServer();
    await new Promise<void>((done) => squatter.listen(0, '127.0.0.1', done));
    t.teardown(() => squatter.close());
    const blocked = await startService(t, dataDir, queuePrefix, (squatter.address() as AddressInfo).port);
    t.equal(await blocked.exited, 1, 'start-up fails');
    t.match(blocked.stderr(), /EADDRINUSE/);
    t.ok(
      blocked.logs.some((l) => String(l.msg).startsWith('DATABASE_URL is not set: embedded PostgreSQL')),
      'after the embedded server had started',
    );
    t.same(processesMentioning(join(dataDir, 'postgres')), [], 'and no PostgreSQL of the folder runs any more');
    t.notOk(existsSync(join(dataDir, 'circle-actions.lock')), 'the folder is free again');
  },
);

t.test('a service whose embedded PostgreSQL dies stops and exits non-zero, so it can be started again', async (t) => {
  const { dataDir, queuePrefix } = await freshDataFolder(t);
  const service = await startReady(t, dataDir, queuePrefix, 'start');
  const postmaster = Number((await readFile(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]);
  t.ok(
    serviceProcesses(service).some((p) => p.pid === postmaster && p.command === 'postgres'),
    "the server is the service's own",
  );
  process.kill(postmaster, 'SIGKILL');
  // The service's own stop is bounded by its 15 s grace; a minute leaves room for a loaded machine.
  const exit = await Promise.race([service.exited, new Promise((done) => setTimeout(done, 60_000, 'still running'))]);
  t.equal(exit, 1, 'the service exits non-zero, instead of answering /healthz with no database');
  t.ok(
    service.logs.some(
      (l) => l.msg === 'the embedded PostgreSQL is gone: stopping the service (start it again to recover)',
    ),
    'and says why',
  );
  t.notOk(existsSync(join(dataDir, 'circle-actions.lock')), 'the folder is free again');

  const next = await startReady(t, dataDir, queuePrefix, 'start after the loss');
  await expectStatus(next, 200, 'GET', '/readyz');
  await stopService(t, next, 'SIGTERM', dataDir);
});
