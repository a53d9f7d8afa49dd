import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problems } from '../http/schemas.js';
import { CircleParams } from '../circles/circles.schemas.js';
import { CircleEventPage, EventsQuery, InboxPage } from './activity.schemas.js';
import * as activity from './activity.service.js';

export const activityRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['activity'];

  app.get(
    '/circles/:circleId/events',
    {
      schema: {
        operationId: 'listCircleEvents',
        tags,
        summary: "The circle's activity feed, newest first (members)",
        description:
          'Every event of the circle except notices meant for one member (payouts, lease reminders). ' +
          'A walk with nextCursor serves exactly the events committed when its first page was read, each once.',
        params: CircleParams,
        querystring: EventsQuery,
        response: { 200: CircleEventPage, ...problems(400, 401, 404) },
      },
    },
    async (request) => activity.listCircleEvents(app, request.user.sub, request.params.circleId, request.query),
  );

  app.get(
    '/me/events',
    {
      schema: {
        operationId: 'listMyEvents',
        tags,
        summary: 'My inbox: what concerns me across my circles, newest first',
        description: 'My claims reviewed, sent back, expired or revoked, my leases ending within the hour, my payouts.',
        querystring: EventsQuery,
        response: { 200: InboxPage, ...problems(400, 401) },
      },
    },
    async (request) => activity.listMyEvents(app, request.user.sub, request.query),
  );
};
