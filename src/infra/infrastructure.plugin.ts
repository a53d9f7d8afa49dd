import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { createDb, type Db } from './postgres.js';
import { createRequestRedis, waitUntilReady } from './redis.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    db: Db;
    /**
     * One connection of its own for /readyz: a probe queued behind the request pool would fail
     * whenever the service is merely busy, and a load balancer would take a busy instance out.
     */
    readinessDb: Db;
    /**
     * Fail-fast Redis for the rate limiter's counts, auto-pipelined (see infrastructurePlugin);
     * null without REDIS_URL, when each process counts on its own.
     */
    rateLimitRedis: Redis | null;
  }
}

export const configPlugin = fp(
  async (app, opts: { config: Config }) => {
    app.decorate('config', opts.config);
  },
  { name: 'config' },
);

/** Connections the API needs, opened at start and closed when the app closes. */
export const infrastructurePlugin = fp(
  async (app) => {
    const { config } = app;
    const db = createDb(config.databaseUrl, config.databasePoolSize, config.databaseConnectTimeoutMs);
    // The rate limiter asks Redis on most requests of a member who is not in a busy stretch (a rush
    // of claims spread over thousands of members). Auto-pipelining sends every command issued in one
    // event-loop turn as one write, and Redis answers them from one read: in the claim_next bench
    // that cut Redis's CPU per claim by about a third (docs/BENCHMARKS.md). Queue producers keep a
    // connection of their own without it (src/jobs/queues.plugin.ts).
    const rateLimitRedis = config.redisUrl ? createRequestRedis(config.redisUrl, { enableAutoPipelining: true }) : null;
    if (rateLimitRedis) {
      // Errors surface on the commands that hit them; an unhandled 'error' event would crash the process.
      rateLimitRedis.on('error', (err) => app.log.debug({ err }, 'redis connection error'));
      await waitUntilReady(rateLimitRedis, 2_000);
    }
    const readinessDb = createDb(config.databaseUrl, 1, config.databaseConnectTimeoutMs);
    app.decorate('db', db);
    app.decorate('readinessDb', readinessDb);
    app.decorate('rateLimitRedis', rateLimitRedis);
    app.addHook('onClose', async () => {
      rateLimitRedis?.disconnect();
      await Promise.all([db.destroy(), readinessDb.destroy()]);
    });
  },
  { name: 'infrastructure', dependencies: ['config'] },
);
