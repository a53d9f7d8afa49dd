import { Type } from 'typebox';
import { Id, Obj, SnapshotPageQuery, Timestamp } from '../http/schemas.js';

export const Balance = Type.Object(
  {
    circleId: Id('Circle'),
    unit: Type.String({ description: 'Unit' }),
    amount: Type.Integer({ description: 'Balance in integer minor units' }),
  },
  { description: 'A balance in one circle and unit' },
);

export const Entry = Type.Object(
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

export const LedgerQuery = Obj({ ...SnapshotPageQuery });
