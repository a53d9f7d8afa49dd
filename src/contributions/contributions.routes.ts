import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { csvStream, sendCsv } from '../http/csv.js';
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

  app.get(
    '/projects/:projectId/contributions.csv',
    {
      schema: {
        operationId: 'exportProjectContributionsCsv',
        tags,
        summary: 'Every contribution row of a project as CSV, oldest first, streamed (members)',
        description:
          'UTF-8 with a byte-order mark, CRLF line ends, RFC 4180 quoting; text cells starting with = + - @ or a ' +
          'tab or carriage return get a leading apostrophe so spreadsheets show them as text. Columns: ' +
          'created_at (ISO 8601), handle, display_name, source, points, task_title, reason. The rows are exactly ' +
          'those committed when the export began, each once.',
        params: ProjectParams,
        produces: ['text/csv'],
        response: {
          200: Type.String({ description: 'CSV with a header row, one line per contribution' }),
          ...problems(400, 401, 404),
        },
      },
    },
    async (request, reply) => {
      const { project, pages } = await contributions.exportProjectContributions(
        app,
        request.user.sub,
        request.params.projectId,
      );
      async function* batches() {
        for await (const page of pages)
          yield page.map((r) => [r.createdAt, r.handle, r.displayName, r.source, r.points, r.taskTitle, r.reason]);
      }
      return sendCsv(
        reply,
        { asciiName: `contributions-${project.id}.csv`, displayName: `${project.title} contributions.csv` },
        csvStream(['created_at', 'handle', 'display_name', 'source', 'points', 'task_title', 'reason'], batches()),
      );
    },
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
