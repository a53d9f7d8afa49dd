import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problems } from '../http/schemas.js';
import { CircleParams } from '../circles/circles.schemas.js';
import { CircleHealth, HealthQuery } from './circle-health.schemas.js';
import { circleHealth } from './circle-health.service.js';

export const circleHealthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/circles/:circleId/health',
    {
      schema: {
        operationId: 'getCircleHealth',
        tags: ['circles'],
        summary: 'Circle health figures (owner, admin)',
        description:
          'Counted in local days of the circle’s time zone (PATCH the circle’s timezone); the owner is left out ' +
          'of every member figure.',
        params: CircleParams,
        querystring: HealthQuery,
        response: { 200: CircleHealth, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => circleHealth(app, request.user.sub, request.params.circleId, request.query.window),
  );
};
