import { copyFile, mkdir, mkdtemp, appendFile, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import pg from 'pg';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { EmbeddedPostgres, EmbeddedPostgresError, linkSharedLibraries } from '../../src/infra/embedded-postgres.js';
import { processTree, stillRunning } from '../process-tree.js';

// The embedded server's lifecycle, in this process: initialise once, start, stop with nothing left
// running, keep data and port across restarts, recover from a server a crashed run left behind.

async function dataFolder(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ca-embpg-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A logger whose lines the test can read. */
function capturingLog() {
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

function server(t: Test, dataDir: string, log = capturingLog().log): EmbeddedPostgres {
  const embedded = new EmbeddedPostgres({ dataDir, database: 'circle_actions', log });
  t.teardown(() => embedded.stop());
  return embedded;
}

async function query<T extends pg.QueryResultRow>(databaseUrl: string, text: string): Promise<T[]> {
  const url = new URL(databaseUrl);
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

const postgresProcesses = () => processTree(process.pid).filter((p) => p.command === 'postgres');

const isRoot = process.getuid?.() === 0;

t.test('initialised once, started, stopped with nothing left; data and port kept across restarts', async (t) => {
  const dataDir = await dataFolder(t);
  const first = server(t, dataDir);
  const started = await first.start();
  t.equal(started.created, true, 'the first start initialises the data directory');
  t.match(
    started.databaseUrl,
    new RegExp(`^postgres://postgres:[0-9a-f]{48}@127\\.0\\.0\\.1:${started.port}/circle_actions$`),
  );

  const [settings] = await query<{ version: string; listen: string; sockets: string; collation: string }>(
    started.databaseUrl,
    `SELECT current_setting('server_version_num') AS version, current_setting('listen_addresses') AS listen,
            current_setting('unix_socket_directories') AS sockets, datlocprovider::text || ':' || datlocale AS collation
     FROM pg_database WHERE datname = 'postgres'`,
  );
  t.ok(Number(settings?.version) >= 180000, 'PostgreSQL 18');
  t.equal(settings?.listen, '127.0.0.1', 'reachable from this machine only');
  t.equal(settings?.sockets, '', 'no Unix socket');
  t.equal(settings?.collation, 'b:C.UTF-8', 'builtin C.UTF-8: the same order and case mapping everywhere');
  const owner = statSync(first.pgdata).uid;
  t.equal(
    owner,
    isRoot ? Number((await readFile('/etc/passwd', 'utf8')).match(/^postgres:[^:]*:(\d+):/m)?.[1]) : process.getuid?.(),
  );
  t.equal(statSync(first.statePath).mode & 0o777, 0o600, 'the password file is private');
  await query(started.databaseUrl, 'CREATE TABLE kept (note text); INSERT INTO kept VALUES ($$still here$$)');

  const running = processTree(process.pid).filter((p) => p.command === 'postgres' || p.pid === first.pid);
  t.ok(running.length > 1, `the server and its helper processes run (${running.length})`);
  await first.stop();
  t.equal(first.pid, null);
  t.same(stillRunning(running), [], 'stop leaves no process of the server behind');
  await first.stop();
  t.pass('stopping again does nothing');

  const second = server(t, dataDir);
  const restarted = await second.start();
  t.equal(restarted.created, false, 'a restart does not initialise again');
  t.equal(restarted.port, started.port, 'the port of the last run is reused while free');
  t.equal(restarted.databaseUrl, started.databaseUrl);
  t.same(await query(restarted.databaseUrl, 'SELECT note FROM kept'), [{ note: 'still here' }]);
  await second.stop();

  // The remembered port taken by someone else meanwhile: a new one, remembered in turn.
  const squatter = createServer();
  await new Promise<void>((done) => squatter.listen(started.port, '127.0.0.1', done));
  t.teardown(() => squatter.close());
  const third = server(t, dataDir);
  const moved = await third.start();
  t.not(moved.port, started.port, 'a taken port is replaced');
  t.equal(JSON.parse(await readFile(third.statePath, 'utf8')).port, moved.port);
  t.same(await query(moved.databaseUrl, 'SELECT note FROM kept'), [{ note: 'still here' }]);

  // A server whose owner vanished (a crash) is stopped by the next start on the folder.
  const { log, lines } = capturingLog();
  const next = server(t, dataDir, log);
  const orphan = postgresProcesses();
  const orphanPid = third.pid;
  const resumed = await next.start();
  t.ok(
    lines.some(
      (l) => l.msg === 'stopping the embedded PostgreSQL a crashed run left behind' && l.serverPid === orphanPid,
    ),
    'it names the server it stops',
  );
  t.same(stillRunning(orphan), [], 'the old server is gone');
  t.same(await query(resumed.databaseUrl, 'SELECT note FROM kept'), [{ note: 'still here' }]);

  await next.stop();

  // A postmaster.pid whose process is gone (power loss) is no server to stop: PostgreSQL itself
  // discards the file and starts.
  const gone = spawn(process.execPath, ['-e', '']);
  await once(gone, 'exit');
  await writeFile(join(next.pgdata, 'postmaster.pid'), `${gone.pid}\n${next.pgdata}\n`);
  const afterPowerLoss = server(t, dataDir);
  t.same(await query((await afterPowerLoss.start()).databaseUrl, 'SELECT note FROM kept'), [{ note: 'still here' }]);
  await afterPowerLoss.stop();

  // The password file lost its password: no guessing, the operator is told.
  const state = await readFile(next.statePath, 'utf8');
  await writeFile(next.statePath, '{}');
  await t.rejects(
    server(t, dataDir).start(),
    new EmbeddedPostgresError(`${next.statePath} holds no password: restore it, or start on an empty DATA_DIR`),
  );
  await writeFile(next.statePath, state);

  // A server that cannot start: the error carries the end of its log.
  await appendFile(join(next.pgdata, 'postgresql.conf'), "\nshared_buffers = 'plenty'\n");
  const broken = server(t, dataDir);
  const err = await broken.start().catch((e: unknown) => e);
  t.ok(err instanceof EmbeddedPostgresError);
  t.match((err as Error).message, /^the embedded PostgreSQL did not start \(exit 1\); from .*postgres\.log:\n/);
  t.match((err as Error).message, /shared_buffers/);
  t.same(postgresProcesses(), [], 'nothing runs after the failed start');
});

t.test('stop() during start() ends it without a process left', async (t) => {
  const dataDir = await dataFolder(t);
  const embedded = server(t, dataDir);
  const starting = embedded.start();
  await embedded.stop();
  await t.rejects(starting, new EmbeddedPostgresError('stopped while starting'));
  t.same(postgresProcesses(), []);

  // And once it is initialised, stopNow() (for exit handlers) stops a running server by itself.
  const again = server(t, dataDir);
  await again.start();
  const running = processTree(process.pid).filter((p) => p.command === 'postgres');
  t.ok(running.length > 0);
  again.stopNow();
  await again.stop();
  t.same(stillRunning(running), []);
});

t.test('a folder named postgres that is no data directory is left alone', async (t) => {
  const dataDir = await dataFolder(t);
  await mkdir(join(dataDir, 'postgres'));
  await writeFile(join(dataDir, 'postgres', 'notes.txt'), 'mine');
  await t.rejects(
    server(t, dataDir).start(),
    new EmbeddedPostgresError(
      `${join(dataDir, 'postgres')} exists but is no PostgreSQL data directory: move it away, or set DATA_DIR to another folder`,
    ),
  );
  t.equal(await readFile(join(dataDir, 'postgres', 'notes.txt'), 'utf8'), 'mine');
});

t.test(
  isRoot
    ? "as root the server's user must reach the folder: a clear error when it cannot"
    : 'as a normal user the server runs as that user, in any folder it owns',
  async (t) => {
    const parent = await dataFolder(t);
    if (isRoot) {
      // Like /root/project/.data: a private parent folder (0700) the postgres user cannot pass.
      const dataDir = join(parent, 'data');
      const err = await server(t, dataDir)
        .start()
        .catch((e: unknown) => e);
      t.ok(err instanceof EmbeddedPostgresError);
      t.match((err as Error).message, `runs as user postgres (it refuses root), which cannot reach ${dataDir}`);
    } else {
      const started = await server(t, join(parent, 'data')).start();
      t.equal(started.created, true);
    }
  },
);

t.test("the binaries' library links are made when the install script did not run", async (t) => {
  // A package laid out like @embedded-postgres/<platform>, with its own install script.
  const dir = await dataFolder(t);
  const require = createRequire(import.meta.url);
  const real = join(
    require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`, {
      paths: [join(require.resolve('embedded-postgres'), '..')],
    }),
    '..',
    '..',
  );
  await mkdir(join(dir, 'native', 'lib'), { recursive: true });
  await mkdir(join(dir, 'scripts'));
  await copyFile(join(real, 'scripts', 'hydrate-symlinks.js'), join(dir, 'scripts', 'hydrate-symlinks.js'));
  await writeFile(join(dir, 'package.json'), '{"type":"module"}');
  await writeFile(join(dir, 'native', 'lib', 'libdemo.so.1.2'), 'library');
  await writeFile(
    join(dir, 'native', 'pg-symlinks.json'),
    JSON.stringify([{ source: 'native/lib/libdemo.so.1.2', target: 'native/lib/libdemo.so.1' }]),
  );
  await linkSharedLibraries(dir);
  t.equal(await readlink(join(dir, 'native', 'lib', 'libdemo.so.1')), 'libdemo.so.1.2');
  await linkSharedLibraries(dir);
  t.pass('present links are left as they are');
});
