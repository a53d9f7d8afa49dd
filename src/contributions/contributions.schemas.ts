import { Type } from 'typebox';
import { Id, Obj, Page, SnapshotPageQuery, Timestamp } from '../http/schemas.js';

export const MemberTotal = Type.Object(
  {
    userId: Id('Member'),
    handle: Type.String({ description: "Member's handle" }),
    points: Type.Integer({ description: 'Total points in the project (accepted tasks plus adjustments)' }),
    acceptedTasks: Type.Integer({ description: 'Accepted submissions' }),
  },
  { description: "A member's contribution to a project" },
);

export const ContributionTotals = Page(MemberTotal, 'Contributors, highest points first');
export const ContributionsQuery = Obj({ ...SnapshotPageQuery });

export const AdjustmentBody = Obj(
  {
    userId: Id('Member whose points change'),
    points: Type.Integer({
      minimum: -1000000000,
      maximum: 1000000000,
      not: { const: 0 },
      description: 'Points to add (negative to deduct); not zero',
    }),
    reason: Type.String({ minLength: 1, maxLength: 1000, description: "Why; shown on the member's statement" }),
  },
  'An owner adjustment',
  { examples: [{ userId: '8d2f1c7e-3b4a-4f6e-9a1d-2c5b7e9f0a13', points: 150, reason: '额外整理了全章术语表' }] },
);

export const Contribution = Type.Object(
  {
    id: Type.String({ description: 'Ledger row id' }),
    circleId: Id('Circle'),
    projectId: Type.Union([Id('Project'), Type.Null()], { description: 'Project, if any' }),
    userId: Id('Member'),
    source: Type.Union(
      [Type.Literal('task'), Type.Literal('adjustment'), Type.Literal('checkin'), Type.Literal('recognition')],
      { description: 'Where the points come from' },
    ),
    taskId: Type.Union([Id('Task'), Type.Null()], { description: 'Accepted task, for source task' }),
    claimId: Type.Union([Id('Claim'), Type.Null()], { description: 'Accepted claim, for source task' }),
    points: Type.Integer({ description: 'Points (may be negative for a correction)' }),
    reason: Type.Union([Type.String(), Type.Null()], { description: 'Reason, for adjustments' }),
    createdBy: Type.Union([Id('Who recorded it'), Type.Null()], {
      description: 'Reviewer or adjuster; null when automatic',
    }),
    createdAt: Timestamp('When it was recorded'),
  },
  { description: 'A contribution ledger row' },
);
