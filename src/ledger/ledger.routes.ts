import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { csvStream, sendCsv } from '../http/csv.js';
import { Page, problems } from '../http/schemas.js';
import { Balance, Entry, LedgerQuery } from './ledger.schemas.js';
import * as ledger from './ledger.service.js';

export const ledgerRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['ledger'];

  app.get(
    '/me/balances',
    {
      schema: {
        operationId: 'listMyBalances',
        tags,
        summary: 'My balances per circle and unit',
        response: { 200: Page(Balance, 'Balances'), ...problems(401) },
      },
    },
    async (request) => ledger.listMemberBalances(app, request.user.sub),
  );

  app.get(
    '/me/ledger',
    {
      schema: {
        operationId: 'listMyLedgerEntries',
        tags,
        summary: 'The ledger entries on my balances, newest first',
        description:
          'A walk with nextCursor serves exactly the entries committed when its first page was read, each once.',
        querystring: LedgerQuery,
        response: { 200: Page(Entry, 'Entries'), ...problems(400, 401) },
      },
    },
    async (request) => ledger.listMemberLedger(app, request.user.sub, request.query),
  );

  app.get(
    '/me/ledger.csv',
    {
      schema: {
        operationId: 'exportMyLedgerCsv',
        tags,
        summary: 'The ledger entries on my balances as CSV, oldest first, streamed',
        description:
          'The fields of GET /v1/me/ledger, one line per entry: id, circle_id, unit, amount, transaction_id, kind, ' +
          'settlement_id, description, created_at (ISO 8601). UTF-8 with a byte-order mark, CRLF line ends, ' +
          'RFC 4180 quoting, text cells guarded against spreadsheet formulas. The entries are exactly those ' +
          'committed when the export began, each once.',
        produces: ['text/csv'],
        response: { 200: Type.String({ description: 'CSV with a header row, one line per entry' }), ...problems(401) },
      },
    },
    async (request, reply) => {
      const entries = await ledger.exportMemberLedger(app, request.user.sub);
      async function* batches() {
        for await (const page of entries)
          yield page.map((e) => [
            e.id,
            e.circleId,
            e.unit,
            e.amount,
            e.transactionId,
            e.kind,
            e.settlementId,
            e.description,
            e.createdAt,
          ]);
      }
      const header = [
        'id',
        'circle_id',
        'unit',
        'amount',
        'transaction_id',
        'kind',
        'settlement_id',
        'description',
        'created_at',
      ];
      return sendCsv(reply, { asciiName: 'ledger.csv' }, csvStream(header, batches()));
    },
  );
};
