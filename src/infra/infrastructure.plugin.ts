import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { createDb, type Db } from './postgres.js';
import { createRequestRedis, waitUntilReady } from './redis.js';
import { Queues } from '../jobs/queues.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    db: Db;
    /** Fail-fast Redis for the rate limiter's counts, auto-pipelined (see infrastructurePlugin). */
    rateLimitRedis: Redis;
    /** Fail-fast Redis for queue producers (app.queues). */
    queueRedis: Redis;
    queues: Queues;
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
    const db = createDb(config.databaseUrl, config.databasePoolSize);
    // The rate limiter asks Redis on most requests of a member who is not in a busy stretch (a rush
    // of claims spread over thousands of members). Auto-pipelining sends every command issued in one
    // event-loop turn as one write, and Redis answers them from one read: in the claim_next bench
    // that cut Redis's CPU per claim by about a third (docs/BENCHMARKS.md). BullMQ keeps a
    // connection of its own without it: its users report lost job data when it is auto-pipelined.
    const rateLimitRedis = createRequestRedis(config.redisUrl, { enableAutoPipelining: true });
    const queueRedis = createRequestRedis(config.redisUrl);
    for (const redis of [rateLimitRedis, queueRedis]) {
      // Errors surface on the commands that hit them; an unhandled 'error' event would crash the process.
      redis.on('error', (err) => app.log.debug({ err }, 'redis connection error'));
    }
    await Promise.all([waitUntilReady(rateLimitRedis, 2_000), waitUntilReady(queueRedis, 2_000)]);
    const queues = new Queues(queueRedis, config.queuePrefix, true);
    app.decorate('db', db);
    app.decorate('rateLimitRedis', rateLimitRedis);
    app.decorate('queueRedis', queueRedis);
    app.decorate('queues', queues);
    app.addHook('onClose', async () => {
      await queues.close();
      rateLimitRedis.disconnect();
      queueRedis.disconnect();
      await db.destroy();
    });
  },
  { name: 'infrastructure', dependencies: ['config'] },
);
