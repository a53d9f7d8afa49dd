import fp from 'fastify-plugin';
import { QUEUE_NAMES, Queues } from '../jobs/queues.js';
import { openQueueConnection } from '../jobs/queue-backend.js';
import { requireOperatorToken } from './operator-auth.js';

export const QUEUE_DASHBOARD_PATH = '/admin/queues';

/**
 * The operator's queue dashboard (bull-board) at /admin/queues, behind OPERATOR_TOKEN; not served
 * at all without it (404). It reads the queues through BullMQ's API, so it works on both queue
 * backends. Read-only but for retrying failed jobs: every processor is safe to run again,
 * while removing or adding jobs by hand is what the sweeps and producers are for.
 */
export const queueDashboardPlugin = fp(
  async (app) => {
    const token = app.config.operatorToken;
    if (!token) return;
    // Loaded only when served: bull-board brings a template engine and static files that a
    // process without the dashboard need not load at every start.
    const [{ createBullBoard }, { BullMQAdapter }, { FastifyAdapter }] = await Promise.all([
      import('@bull-board/api'),
      import('@bull-board/api/bullMQAdapter'),
      import('@bull-board/fastify'),
    ]);
    // A connection of its own: a page load reads every queue at once, more than the request
    // path's fail-fast producers (2 s, two connections on Postgres) are sized for.
    const connection = openQueueConnection(app.config, 'worker', (err) =>
      app.log.debug({ err }, 'queue dashboard connection error'),
    );
    const queues = new Queues(connection, app.config.queuePrefix);
    app.addHook('onClose', async () => {
      await queues.close();
      await connection.close();
    });
    const serverAdapter = new FastifyAdapter();
    createBullBoard({
      queues: QUEUE_NAMES.map(
        (name) => new BullMQAdapter(queues.get(name), { readOnlyMode: true, allowRetries: true }),
      ),
      // @bull-board/fastify brings its own copy of @bull-board/api's types (one patch version
      // apart); the adapter is the same at run time.
      serverAdapter: serverAdapter as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
      options: { uiConfig: { boardTitle: 'Circle Actions queues' } },
    });
    serverAdapter.setBasePath(QUEUE_DASHBOARD_PATH);
    await app.register(async (operator) => {
      operator.addHook('onRequest', requireOperatorToken(token));
      await operator.register(serverAdapter.registerPlugin(), { prefix: QUEUE_DASHBOARD_PATH });
    });
  },
  { name: 'queue-dashboard', dependencies: ['config'] },
);
