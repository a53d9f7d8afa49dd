import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { csvLine, sendCsv } from '../http/csv.js';
import { ProjectParams, problems } from '../http/schemas.js';
import {
  Accepted,
  PreviewQuery,
  SettleBody,
  Settlement,
  SettlementPreview,
  SettlementParams,
  Statement,
  StatementParams,
} from './settlements.schemas.js';
import * as settlements from './settlements.service.js';

export const settlementRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['settlements'];

  app.post(
    '/projects/:projectId/settlements',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'settleProject',
        tags,
        summary: 'Settle the reward pool by contribution (owner, admin); done by workers',
        params: ProjectParams,
        body: SettleBody,
        response: { 202: Accepted, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      reply
        .code(202)
        .send(await settlements.requestSettlement(app, request.user.sub, request.params.projectId, request.body ?? {})),
  );

  app.get(
    '/projects/:projectId/settlement-preview',
    {
      schema: {
        operationId: 'previewSettlement',
        tags,
        summary: 'What settling now would pay; writes nothing (owner, admin)',
        params: ProjectParams,
        querystring: PreviewQuery,
        response: { 200: SettlementPreview, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => settlements.previewSettlement(app, request.user.sub, request.params.projectId, request.query),
  );

  app.get(
    '/settlements/:settlementId',
    {
      schema: {
        operationId: 'getSettlement',
        tags,
        summary: 'A settlement and its payouts',
        params: SettlementParams,
        response: { 200: Settlement, ...problems(400, 401, 404) },
      },
    },
    async (request) => settlements.getSettlement(app, request.user.sub, request.params.settlementId),
  );

  app.get(
    '/settlements/:settlementId/statements/:userId',
    {
      schema: {
        operationId: 'getSettlementStatement',
        tags,
        summary: "A member's statement: the contributions behind the points and the payout (that member; owner, admin)",
        params: StatementParams,
        response: { 200: Statement, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) =>
      settlements.getStatement(app, request.user.sub, request.params.settlementId, request.params.userId),
  );

  app.get(
    '/settlements/:settlementId/payouts.csv',
    {
      schema: {
        operationId: 'exportPayoutsCsv',
        tags,
        summary: 'Payouts as CSV',
        params: SettlementParams,
        produces: ['text/csv'],
        response: { 200: Type.String({ description: 'CSV with a header row' }), ...problems(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const payouts = await settlements.payoutsForExport(app, request.user.sub, request.params.settlementId);
      // One row per member paid: small enough to build whole. Its format predates the exports and
      // stays as clients know it: LF line ends and no byte-order mark (all cells are ASCII).
      const header = [
        'user_id',
        'handle',
        'points',
        'amount',
        'share_numerator',
        'share_denominator',
        'rounded_up',
        'capped',
      ];
      const rows = payouts.map((p) =>
        csvLine(
          [p.user_id, p.handle, p.points, p.amount, p.share_numerator, p.share_denominator, p.rounded_up, p.capped],
          '\n',
        ),
      );
      return sendCsv(
        reply,
        { asciiName: `payouts-${request.params.settlementId}.csv` },
        csvLine(header, '\n') + rows.join(''),
      );
    },
  );
};
