import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ProjectParams, problems } from '../http/schemas.js';
import { AdjustmentBody, Contribution, ContributionTotals, ContributionsQuery } from './contributions.schemas.js';
import * as contributions from './contributions.service.js';

export const contributionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['contributions'];

  app.get(
    '/projects/:projectId/contributions',
    {
      schema: {
        operationId: 'listProjectContributions',
        tags,
        summary: 'Points per member in a project',
        params: ProjectParams,
        querystring: ContributionsQuery,
        response: { 200: ContributionTotals, ...problems(400, 401, 404) },
      },
    },
    async (request) =>
      contributions.listProjectContributions(
        app,
        request.user.sub,
        request.params.projectId,
        request.query.limit ?? 50,
        request.query.cursor,
      ),
  );

  app.post(
    '/projects/:projectId/adjustments',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'createAdjustment',
        tags,
        summary: "Add or deduct a member's points, with a reason (owner, admin)",
        params: ProjectParams,
        body: AdjustmentBody,
        response: { 201: Contribution, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(await contributions.adjustContribution(app, request.user.sub, request.params.projectId, request.body)),
  );
};
