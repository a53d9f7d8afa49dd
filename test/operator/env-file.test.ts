import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SETTING_NAMES } from '../../src/config.js';
import { createTestEnv, queueBackendEnv } from '../helper.js';
import { freePort, spawnServer, waitUntilReady } from '../service-process.js';

// `.env` in the working directory is read at start-up (Node's own parser); the real environment
// wins over it. `.env.example` lists every setting with a comment, kept in step with config.ts.

t.test('.env.example lists exactly the settings config.ts reads, each with a comment', async (t) => {
  const lines = (await readFile('.env.example', 'utf8')).split('\n');
  const keys: string[] = [];
  lines.forEach((line, i) => {
    const match = /^([A-Z][A-Z0-9_]*)=/.exec(line);
    if (!match) return;
    keys.push(match[1]!);
    t.match(lines[i - 1], /^# \S/, `${match[1]} has a comment line above it`);
  });
  t.same([...keys].sort(), [...SETTING_NAMES].sort(), 'the same names, none missing, none extra');
  t.equal(new Set(keys).size, keys.length, 'each once');
});

t.test('the server reads .env from its working directory; the environment wins', async (t) => {
  const { config } = await createTestEnv(t, queueBackendEnv('postgres'));
  const dir = await mkdtemp(join(tmpdir(), 'ca-env-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [filePort, envPort] = [await freePort(), await freePort()];
  await writeFile(
    join(dir, '.env'),
    [
      '# settings for this test',
      `DATABASE_URL=${config.databaseUrl}`,
      `JWT_SECRET="${'f'.repeat(40)}"`,
      'QUEUE_BACKEND=postgres',
      'REDIS_URL=',
      `QUEUE_PREFIX=${config.queuePrefix}`,
      'HOST=127.0.0.1',
      `PORT=${filePort}`,
      'ROLE=api',
      'LOG_LEVEL=info',
    ].join('\n'),
  );
  const inherited = SETTING_NAMES.filter((name) => name !== 'PORT');
  const server = spawnServer(t, { PORT: String(envPort) }, { cwd: dir, without: inherited });
  await waitUntilReady(server, envPort);
  t.pass('ready on the port the environment gives, over the one in .env');
  const started = server.logs.find((line) => line.msg === 'circle-actions started');
  t.equal(started?.role, 'api', 'ROLE came from the file');
  await t.rejects(fetch(`http://127.0.0.1:${filePort}/healthz`), 'nothing listens on the port .env gave');
  await server.kill('SIGTERM');
});

t.test('a bad value in .env stops start-up naming it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ca-env-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, '.env'), 'TRUST_PROXY=everyone\n');
  const server = spawnServer(t, {}, { cwd: dir, without: SETTING_NAMES });
  t.equal(await server.exited, 1);
  t.match(server.stderr(), /circle-actions: invalid setting TRUST_PROXY="everyone": "everyone" is not an IP address/);
});
