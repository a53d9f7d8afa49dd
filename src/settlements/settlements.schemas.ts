import { Type } from 'typebox';
import { Id, Obj, Timestamp } from '../http/schemas.js';

const Decimal = (description: string) =>
  Type.String({ pattern: '^-?[0-9]+$', description: `${description} (decimal string: exact even beyond 2^53)` });

const PolicyFields = {
  minPoints: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      description: 'Members below this many points do not qualify (default 0)',
    }),
  ),
  capBasisPoints: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 10000,
      description:
        'Nobody receives more than this share of the pool, in basis points (10000 = 100%); the excess goes to the others',
    }),
  ),
};

export const SettleBody = Obj({ ...PolicyFields }, 'Settlement policy; plain proportional when empty', {
  examples: [{}, { minPoints: 100, capBasisPoints: 4000 }],
});
export const PreviewQuery = Obj({ ...PolicyFields });
export const SettlementParams = Obj({ settlementId: Id('Settlement id') });
export const StatementParams = Obj({ settlementId: Id('Settlement id'), userId: Id('Member') });

export const PayoutSchema = Type.Object(
  {
    userId: Id('Member'),
    handle: Type.String({ description: "Member's handle" }),
    points: Type.Integer({ description: "The member's points up to the cutoff" }),
    amount: Type.Integer({ description: "Payout in the pool's unit: the exact share rounded down, or up by one unit" }),
    share: Type.Object(
      {
        numerator: Decimal('Numerator of the exact fraction of the pool'),
        denominator: Decimal('Denominator of the exact fraction of the pool'),
      },
      { description: 'Exact fraction of the pool the member is entitled to, in lowest terms' },
    ),
    roundedUp: Type.Boolean({ description: 'Received one of the remainder units (largest remainders first)' }),
    capped: Type.Boolean({ description: 'Held at the cap; the excess went to the others' }),
  },
  { description: "One member's payout" },
);

export const Settlement = Type.Object(
  {
    id: Type.Union([Id('Settlement id'), Type.Null()], { description: 'Settlement id; null for a preview' }),
    projectId: Id('Project'),
    circleId: Id('Circle'),
    status: Type.Union(
      [
        Type.Literal('pending'),
        Type.Literal('running'),
        Type.Literal('completed'),
        Type.Literal('failed'),
        Type.Literal('preview'),
      ],
      { description: 'pending -> completed (or failed); preview for a dry run' },
    ),
    poolAmount: Type.Integer({ description: 'Pool size in integer minor units' }),
    unit: Type.String({ description: 'Unit of the pool' }),
    policy: Type.Object(
      {
        minPoints: Type.Union([Type.Integer(), Type.Null()], {
          description: 'Minimum points to qualify; null for none',
        }),
        capBasisPoints: Type.Union([Type.Integer(), Type.Null()], {
          description: 'Cap per member in basis points; null for none',
        }),
      },
      { description: 'The policy applied' },
    ),
    cutoffContributionId: Type.String({ description: 'Contributions up to this ledger row id count' }),
    totalPoints: Type.Union([Type.Integer(), Type.Null()], {
      description: 'Points of all payees; null until completed',
    }),
    distributed: Type.Union([Type.Integer(), Type.Null()], { description: 'Sum of payouts; null until completed' }),
    undistributed: Type.Union([Type.Integer(), Type.Null()], {
      description: 'What stays in the pool (no payees, or everyone capped); null until completed',
    }),
    resultHash: Type.Union([Type.String(), Type.Null()], {
      description: 'SHA-256 of the canonical payout list; anyone can recompute it; null until completed',
    }),
    failureReason: Type.Union([Type.String(), Type.Null()], { description: 'Why it failed, if it did' }),
    createdAt: Type.Union([Timestamp('When it was requested'), Type.Null()], {
      description: 'When it was requested; null for a preview',
    }),
    completedAt: Type.Union([Timestamp('When it completed'), Type.Null()], { description: 'When it completed' }),
    payouts: Type.Array(PayoutSchema, { description: 'Payouts, largest first (empty until completed)' }),
  },
  { description: "A settlement of a project's reward pool" },
);

export const SettlementPreview = Type.Object(
  {
    ...Settlement.properties,
    reviewsPending: Type.Integer({
      description:
        'Submissions waiting for review, not in these payouts; a settle request is refused (409 reviews_pending or reviews_overdue) while there are any',
    }),
  },
  { description: 'What settling now would pay, and what still waits for review' },
);

export const Accepted = Type.Object(
  {
    id: Id('Settlement id'),
    projectId: Id('Project'),
    status: Type.Literal('pending', { description: 'Workers settle it shortly; poll GET /v1/settlements/:id' }),
  },
  { description: 'The settlement request was accepted' },
);

export const Statement = Type.Object(
  {
    settlementId: Id('Settlement'),
    userId: Id('Member'),
    handle: Type.String({ description: "Member's handle" }),
    status: Type.String({ description: 'Settlement status' }),
    poolAmount: Type.Integer({ description: 'Pool size' }),
    unit: Type.String({ description: 'Unit' }),
    totalPoints: Type.Union([Type.Integer(), Type.Null()], { description: 'Points of all payees' }),
    points: Type.Integer({ description: "This member's points up to the cutoff" }),
    payout: Type.Union([Type.Omit(PayoutSchema, ['userId', 'handle']), Type.Null()], {
      description: 'The payout; null when the member did not qualify or it is not completed',
    }),
    contributions: Type.Array(
      Type.Object(
        {
          id: Type.String({ description: 'Ledger row id' }),
          source: Type.String({ description: 'task, adjustment, checkin or recognition' }),
          taskId: Type.Union([Id('Task'), Type.Null()], { description: 'Accepted task, for source task' }),
          taskTitle: Type.Union([Type.String(), Type.Null()], { description: 'Its title' }),
          weight: Type.Union([Type.Integer(), Type.Null()], { description: 'Its weight' }),
          points: Type.Integer({ description: 'Points of this row (weight x score, or the adjustment)' }),
          reason: Type.Union([Type.String(), Type.Null()], { description: 'Reason, for adjustments' }),
          createdAt: Timestamp('When it was recorded'),
        },
        { description: 'A contribution behind the points' },
      ),
      { description: 'Every row behind the points, oldest first' },
    ),
    explanation: Type.String({ description: 'The arithmetic, in words' }),
  },
  { description: 'Why a member got what they got' },
);
