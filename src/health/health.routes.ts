import { sql } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsync } from 'fastify';
import { unavailable } from '../errors.js';
import { withDeadline } from '../infra/deadline.js';
import { problems } from '../http/schemas.js';
import { sharedRun } from '../infra/shared-run.js';

const Status = Type.Object(
  { status: Type.String({ description: '"ok" when healthy' }) },
  { description: 'Health status' },
);

/**
 * Liveness (the process answers) and readiness for load balancers: Postgres (through a connection
 * of its own, so a busy request pool does not read as an outage), the queue store (Redis, or
 * BullMQ's tables in Postgres through the producers' own pool) and Redis for the rate limits when
 * it is configured.
 */
export const healthRoutes: FastifyPluginAsync = async (app) => {
  const common = { tags: ['health'], security: [] };
  // Open to anyone and unbudgeted (probes must always get through): probes arriving together
  // share one round of checks.
  const unreachable = sharedRun(async () => {
    const failures = new Set<string>();
    const check = (name: string, probe: Promise<unknown>) =>
      withDeadline(probe, 2_000, `readiness check of ${name}`).catch(() => failures.add(name));
    const queueStore = app.queueConnection.backend === 'redis' ? 'redis' : 'postgres queue tables';
    await Promise.all([
      check('postgres', sql`SELECT 1`.execute(app.readinessDb)),
      check(queueStore, app.queueConnection.ping()),
      app.rateLimitRedis && check('redis', app.rateLimitRedis.ping()),
    ]);
    return [...failures].sort();
  });
  app.get(
    '/healthz',
    {
      config: { rateLimit: false },
      schema: {
        operationId: 'checkLiveness',
        ...common,
        summary: 'Liveness: the process is up',
        response: { 200: Status },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: { rateLimit: false },
      schema: {
        operationId: 'checkReadiness',
        ...common,
        summary: 'Readiness: Postgres, and Redis when configured, answer',
        response: { 200: Status, ...problems(503) },
      },
    },
    async () => {
      const failures = await unreachable();
      if (failures.length) throw unavailable(`Not ready: ${failures.join(' and ')} unreachable.`);
      return { status: 'ok' };
    },
  );
};
