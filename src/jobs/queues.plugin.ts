import fp from 'fastify-plugin';
import { openQueueConnection, type QueueConnection } from './queue-backend.js';
import { Queues } from './queues.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The fail-fast connection of the API's queue producers (app.queues), on either backend. */
    queueConnection: QueueConnection;
    queues: Queues;
  }
}

/** The API's queue producers: they fail fast, so a request never waits on the queue store. */
export const queuesPlugin = fp(
  async (app) => {
    const { config } = app;
    // BullMQ gets a connection of its own, never auto-pipelined on Redis: its users report lost
    // job data when it is. Errors surface on the commands that hit them; an unhandled 'error'
    // event would crash the process.
    const connection = openQueueConnection(config, 'request', (err) =>
      app.log.debug({ err }, 'queue store connection error'),
    );
    // If the store is down we start anyway: the API serves what it can without it, the sweeps
    // do what could not be enqueued, and the connection recovers in the background.
    await connection.waitUntilReady(2_000);
    const queues = new Queues(connection, config.queuePrefix, true);
    app.decorate<QueueConnection>('queueConnection', connection);
    app.decorate('queues', queues);
    app.addHook('onClose', async () => {
      await queues.close();
      await connection.close();
    });
  },
  { name: 'queues', dependencies: ['config'] },
);
