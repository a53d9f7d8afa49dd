import { sql } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsync } from 'fastify';
import { unavailable } from '../errors.js';
import { problems } from '../http/schemas.js';

const Status = Type.Object(
  { status: Type.String({ description: '"ok" when healthy' }) },
  { description: 'Health status' },
);

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Liveness (the process answers) and readiness (Postgres and Redis answer) for load balancers. */
export const healthRoutes: FastifyPluginAsync = async (app) => {
  const common = { tags: ['health'], security: [] };
  app.get(
    '/healthz',
    {
      config: { rateLimit: false },
      schema: { ...common, summary: 'Liveness: the process is up', response: { 200: Status } },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: { rateLimit: false },
      schema: {
        ...common,
        summary: 'Readiness: Postgres and Redis answer',
        response: { 200: Status, ...problems(503) },
      },
    },
    async () => {
      const failures: string[] = [];
      await Promise.all([
        withTimeout(sql`SELECT 1`.execute(app.db), 2_000).catch(() => failures.push('postgres')),
        withTimeout(Promise.all([app.rateLimitRedis.ping(), app.queueRedis.ping()]), 2_000).catch(() =>
          failures.push('redis'),
        ),
      ]);
      if (failures.length) throw unavailable(`Not ready: ${failures.sort().join(' and ')} unreachable.`);
      return { status: 'ok' };
    },
  );
};
