import type { Test } from 'tap';
import { createTestEnv, queueBackendEnv, REDIS_URL, type QueueBackendName } from './helper.js';
import { freePort, spawnServer, waitUntilReady } from './service-process.js';

/**
 * The real service in a child process, as `npm start` runs it (API and workers in one process), on
 * a database and queue prefix of its own and the given queue backend: for the tests that drive it
 * over HTTP like an outside client (the typed client, the demo). Killed at teardown.
 */
export async function startService(t: Test, backend: QueueBackendName): Promise<{ baseUrl: string }> {
  const { config } = await createTestEnv(t, queueBackendEnv(backend));
  const port = await freePort();
  const server = spawnServer(t, {
    DATABASE_URL: config.databaseUrl,
    REDIS_URL: backend === 'redis' ? REDIS_URL : '',
    QUEUE_BACKEND: backend,
    QUEUE_PREFIX: config.queuePrefix,
    JWT_SECRET: config.jwt.secret,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    PASSWORD_HASH_COST: '10',
    // Kind to a database server shared with other test files.
    DATABASE_POOL_SIZE: '4',
    // The test environment's deadline (createTestEnv says why it is long).
    DATABASE_CONNECT_TIMEOUT_MS: String(config.databaseConnectTimeoutMs),
  });
  await waitUntilReady(server, port);
  return { baseUrl: `http://127.0.0.1:${port}` };
}
