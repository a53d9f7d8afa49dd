import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problems } from '../http/schemas.js';
import { CircleParams } from '../circles/circles.schemas.js';
import { Leaderboard, LeaderboardQuery } from './circle-leaderboard.schemas.js';
import { circleLeaderboard } from './circle-leaderboard.service.js';

export const circleLeaderboardRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/circles/:circleId/leaderboard',
    {
      schema: {
        operationId: 'getCircleLeaderboard',
        tags: ['circles'],
        summary: "The circle's points board (members)",
        description:
          'Points from every source in the window, ranked. A walk with nextCursor pages one board, as it stood ' +
          'at its first page: nobody is served twice or skipped while points are earned.',
        params: CircleParams,
        querystring: LeaderboardQuery,
        response: { 200: Leaderboard, ...problems(400, 401, 404) },
      },
    },
    async (request) => circleLeaderboard(app, request.user.sub, request.params.circleId, request.query),
  );
};
