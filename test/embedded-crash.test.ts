import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { stillRunning } from './process-tree.js';
import { expectStatus, freshDataFolder, serviceProcesses, startReady, stopService } from './embedded-service.js';

// A service in embedded mode killed outright (SIGKILL, the OOM killer) leaves its lock file and
// its PostgreSQL behind. The next start on the folder must recognise both as stale, stop the old
// server and carry on with the data.

t.test('after a crash (SIGKILL) the next start takes the folder over and stops the server left behind', async (t) => {
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
});
