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
    /** Fail-fast Redis used on request paths: queue producers, rate limits, readiness. */
    rateLimitRedis: Redis;
    queues: Queues;
  }
}

export const configPlugin = fp(async (app, opts: { config: Config }) => {
  app.decorate('config', opts.config);
}, { name: 'config' });

/** Connections the API needs, opened at start and closed when the app closes. */
export const infrastructurePlugin = fp(async (app) => {
  const { config } = app;
  const db = createDb(config.databaseUrl, config.databasePoolSize);
  const redis = createRequestRedis(config.redisUrl);
  // Errors surface on the commands that hit them; an unhandled 'error' event would crash the process.
  redis.on('error', (err) => app.log.debug({ err }, 'redis connection error'));
  await waitUntilReady(redis, 2_000);
  const queues = new Queues(redis, config.queuePrefix, true);
  app.decorate('db', db);
  app.decorate('rateLimitRedis', redis);
  app.decorate('queues', queues);
  app.addHook('onClose', async () => {
    await queues.close();
    redis.disconnect();
    await db.destroy();
  });
}, { name: 'infrastructure', dependencies: ['config'] });
