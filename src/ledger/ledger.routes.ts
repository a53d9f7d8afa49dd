import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { csvStream, sendCsv } from '../http/csv.js';
import { Id, Obj, Page, PageQuery, Timestamp, problems } from '../http/schemas.js';
import { decodeCursor, pageOf } from '../infra/cursors.js';
import { walkKeyset } from '../infra/keyset-walk.js';
import { lastLedgerEntryId, memberBalances, memberLedgerEntries, memberLedgerPage } from './ledger.repository.js';

/** Rows per query of the CSV export. */
const EXPORT_PAGE_SIZE = 1000;

const Balance = Type.Object(
  {
    circleId: Id('Circle'),
    unit: Type.String({ description: 'Unit' }),
    amount: Type.Integer({ description: 'Balance in integer minor units' }),
  },
  { description: 'A balance in one circle and unit' },
);

const Entry = Type.Object(
  {
    id: Type.String({ description: 'Entry id' }),
    circleId: Id('Circle'),
    unit: Type.String({ description: 'Unit' }),
    amount: Type.Integer({ description: 'Amount credited (positive) or debited (negative)' }),
    transactionId: Id('Ledger transaction; its entries sum to zero'),
    kind: Type.String({ description: 'Transaction kind, e.g. settlement_payout' }),
    settlementId: Type.Union([Id('Settlement'), Type.Null()], { description: 'Settlement behind it, if any' }),
    description: Type.String({ description: 'What it is' }),
    createdAt: Timestamp('When it was booked'),
  },
  { description: 'A ledger entry on one of my balances' },
);

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
    async (request) => {
      const rows = await memberBalances(app.db, request.user.sub);
      return { items: rows.map((r) => ({ circleId: r.circle_id, unit: r.unit, amount: r.balance })), nextCursor: null };
    },
  );

  app.get(
    '/me/ledger',
    {
      schema: {
        operationId: 'listMyLedgerEntries',
        tags,
        summary: 'The ledger entries on my balances, newest first',
        querystring: Obj({ ...PageQuery }),
        response: { 200: Page(Entry, 'Entries'), ...problems(400, 401) },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 50;
      // Typed: a forged cursor holding a string would otherwise reach the bigint comparison as a 500.
      const after = decodeCursor(request.query.cursor, ['number']) as [number] | null;
      const rows = await memberLedgerEntries(app.db, request.user.sub, limit, after ? after[0] : null);
      const page = pageOf(rows, limit, (r) => [r.id]);
      return {
        items: page.items.map((r) => ({
          id: String(r.id),
          circleId: r.circle_id,
          unit: r.unit,
          amount: r.amount,
          transactionId: r.transaction_id,
          kind: r.kind,
          settlementId: r.settlement_id,
          description: r.description,
          createdAt: r.created_at,
        })),
        nextCursor: page.nextCursor,
      };
    },
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
          'RFC 4180 quoting, text cells guarded against spreadsheet formulas. The entries are those that existed ' +
          'when the export began.',
        produces: ['text/csv'],
        response: { 200: Type.String({ description: 'CSV with a header row, one line per entry' }), ...problems(401) },
      },
    },
    async (request, reply) => {
      const userId = request.user.sub;
      const upTo = await lastLedgerEntryId(app.db);
      const pages = walkKeyset(
        'my-ledger',
        EXPORT_PAGE_SIZE,
        (after: number | null, limit) => memberLedgerPage(app.db, userId, { after, upTo }, limit),
        (row) => Number(row.id),
      );
      async function* batches() {
        for await (const page of pages)
          yield page.map((r) => [
            String(r.id),
            r.circle_id,
            r.unit,
            r.amount,
            r.transaction_id,
            r.kind,
            r.settlement_id,
            r.description,
            r.created_at,
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
