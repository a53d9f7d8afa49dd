import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { waitUntilReady } from '../infra/redis.js';
import { openQueueConnection } from './queue-backend.js';
import { Queues } from './queues.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Fail-fast Redis for queue producers (app.queues). */
    queueRedis: Redis;
    queues: Queues;
  }
}

/** The API's queue producers: they fail fast, so a request never waits on Redis. */
export const queuesPlugin = fp(
  async (app) => {
    const { config } = app;
    // BullMQ gets a connection of its own, never auto-pipelined: its users report lost job data
    // when it is.
    const queueRedis = openQueueConnection(config.redisUrl, 'request');
    // Errors surface on the commands that hit them; an unhandled 'error' event would crash the process.
    queueRedis.on('error', (err) => app.log.debug({ err }, 'redis connection error'));
    await waitUntilReady(queueRedis, 2_000);
    const queues = new Queues(queueRedis, config.queuePrefix, true);
    app.decorate('queueRedis', queueRedis);
    app.decorate('queues', queues);
    app.addHook('onClose', async () => {
      await queues.close();
      queueRedis.disconnect();
    });
  },
  { name: 'queues', dependencies: ['config'] },
);
