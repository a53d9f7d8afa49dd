import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { DataFolderInUseError, lockDataFolder } from '../../src/infra/data-folder-lock.js';

// One service per data folder: a second one is refused while the first runs, a lock left by a
// process that is gone is taken over, and releasing never removes a lock that is not one's own.

async function folder(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ca-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const lockPath = (dir: string) => join(dir, 'circle-actions.lock');

/** The pid of a process that has run and exited: nothing runs under it now. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid as number;
}

t.test('the lock is exclusive while held and free again once released', async (t) => {
  const dir = await folder(t);
  const lock = await lockDataFolder(dir);
  t.equal(lock.tookOverFrom, null);
  t.match(JSON.parse(readFileSync(lockPath(dir), 'utf8')), { pid: process.pid, host: hostname() });

  const second = await lockDataFolder(dir).catch((err: unknown) => err);
  t.ok(second instanceof DataFolderInUseError, 'a second taker is refused');
  t.equal(
    (second as Error).message,
    `the data folder ${dir} is in use by another circle-actions process (pid ${process.pid}): stop it first, or set DATA_DIR to another folder`,
  );

  await lock.release();
  t.notOk(existsSync(lockPath(dir)), 'release removes the lock file');
  const again = await lockDataFolder(dir);
  t.equal(again.tookOverFrom, null, 'a released lock is simply taken again');
  again.releaseSync();
  t.notOk(existsSync(lockPath(dir)), 'the synchronous release for exit handlers removes it too');
  t.same(await readdir(dir), [], 'no temporary files are left in the folder');
});

t.test('the exit hook frees the folder while an asynchronous release is under way', async (t) => {
  // A shutdown past its grace period exits the process from a timer, possibly while release()
  // waits for its read: the exit hook's releaseSync is the last chance to remove the file.
  const dir = await folder(t);
  const lock = await lockDataFolder(dir);
  const releasing = lock.release();
  lock.releaseSync();
  t.notOk(existsSync(lockPath(dir)), 'removed by the exit hook at once');
  await releasing;
  t.notOk(existsSync(lockPath(dir)), 'and the release under way finds it gone');
});

t.test('a lock whose process is gone is stale and taken over', async (t) => {
  const dir = await folder(t);
  const pid = await deadPid();
  await writeFile(lockPath(dir), JSON.stringify({ pid, host: hostname(), identity: null }));
  const lock = await lockDataFolder(dir);
  t.match(lock.tookOverFrom, { pid }, 'it says whose lock it took over');
  t.match(JSON.parse(readFileSync(lockPath(dir), 'utf8')), { pid: process.pid });
  await lock.release();
  t.same(await readdir(dir), [], 'the stale lock went without trace');
});

t.test('a live pid that is another process than the one recorded (pid reused) is stale too', async (t) => {
  const dir = await folder(t);
  // Our own pid, but with a start time that is not ours: the recorded process has gone and the
  // kernel gave its pid to someone else.
  const own = JSON.parse((await lockAndRead(dir)).text) as { identity: string | null };
  t.ok(own.identity, 'on Linux the lock records which process holds it, not just the pid');
  await writeFile(
    lockPath(dir),
    JSON.stringify({ pid: process.pid, host: hostname(), identity: `${own.identity}-not-this-one` }),
  );
  const lock = await lockDataFolder(dir);
  t.match(lock.tookOverFrom, { pid: process.pid });
  await lock.release();
});

async function lockAndRead(dir: string): Promise<{ text: string }> {
  const lock = await lockDataFolder(dir);
  const text = readFileSync(lockPath(dir), 'utf8');
  await lock.release();
  return { text };
}

t.test('an unreadable lock file cannot belong to a running process: taken over', async (t) => {
  const dir = await folder(t);
  for (const junk of ['', 'not json', '{"pid":"12"}', '[]']) {
    await writeFile(lockPath(dir), junk);
    const lock = await lockDataFolder(dir);
    t.ok(lock.tookOverFrom, `taken over from ${JSON.stringify(junk)}`);
    await lock.release();
  }
});

t.test('without a recorded identity a lock counts as long as its pid runs', async (t) => {
  const dir = await folder(t);
  await writeFile(lockPath(dir), JSON.stringify({ pid: process.pid, host: hostname() }));
  t.ok((await lockDataFolder(dir).catch((e: unknown) => e)) instanceof DataFolderInUseError);
  // pid 1 runs, under another user for an unprivileged test run (EPERM): still in use.
  await writeFile(lockPath(dir), JSON.stringify({ pid: 1, host: hostname(), identity: null }));
  t.ok((await lockDataFolder(dir).catch((e: unknown) => e)) instanceof DataFolderInUseError);
});

t.test(
  "another machine's lock cannot be checked from here: in use, and the message says how to clear it",
  async (t) => {
    const dir = await folder(t);
    await writeFile(lockPath(dir), JSON.stringify({ pid: 4242, host: 'elsewhere', identity: null }));
    const err = await lockDataFolder(dir).catch((e: unknown) => e);
    t.ok(err instanceof DataFolderInUseError);
    t.equal(
      (err as Error).message,
      `the data folder ${dir} is in use by another circle-actions process (pid 4242 on elsewhere): stop it first, or set DATA_DIR to another folder (if that process is gone, delete ${lockPath(dir)})`,
    );
  },
);

t.test('release leaves alone a lock that is no longer its own', async (t) => {
  const dir = await folder(t);
  const lock = await lockDataFolder(dir);
  const successor = JSON.stringify({ pid: process.pid, host: hostname(), identity: 'someone else' });
  await writeFile(lockPath(dir), successor);
  await lock.release();
  t.equal(readFileSync(lockPath(dir), 'utf8'), successor, 'async release kept it');
  lock.releaseSync();
  t.equal(readFileSync(lockPath(dir), 'utf8'), successor, 'a second, synchronous release does nothing');
});

t.test('two processes racing for one stale lock: exactly one wins, every time', async (t) => {
  // Separate processes, since a process always counts as alive to itself. (With three racers a
  // window of microseconds remains in which two could win: see lockDataFolder.)
  const script = `
    import { lockDataFolder } from ${JSON.stringify(new URL('../../src/infra/data-folder-lock.ts', import.meta.url).href)};
    try { await lockDataFolder(process.argv[1]); process.stdout.write('won'); setTimeout(() => {}, 60_000); }
    catch (err) { process.stdout.write(err.constructor.name); }`;
  const racer = (dir: string) => {
    const child = spawn(
      join('node_modules', '.bin', 'node'),
      ['--import', 'tsx', '--input-type=module', '-e', script, dir],
      {
        env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0' },
      },
    );
    t.teardown(() => child.kill('SIGKILL'));
    // A racer reports as soon as it has its answer; the winner then holds the lock until killed.
    return new Promise<string>((done) => {
      child.stdout.once('data', (chunk: Buffer) => done(chunk.toString()));
      child.once('exit', (code) => done(`exited ${code}`));
    });
  };
  for (let round = 0; round < 3; round++) {
    const dir = await folder(t);
    await writeFile(lockPath(dir), JSON.stringify({ pid: await deadPid(), host: hostname(), identity: null }));
    const results = await Promise.all([racer(dir), racer(dir)]);
    t.same(
      results.sort(),
      ['DataFolderInUseError', 'won'],
      `round ${round + 1}: one took it over, the other found it held`,
    );
  }
});
