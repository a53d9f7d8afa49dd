import { Type } from 'typebox';
import { Id, Obj, Page, PageQuery, Timestamp } from '../http/schemas.js';
import { Skills } from '../accounts/accounts.schemas.js';

export const ClaimStatusSchema = Type.Union(
  [
    Type.Literal('active'),
    Type.Literal('submitted'),
    Type.Literal('accepted'),
    Type.Literal('rejected'),
    Type.Literal('released'),
    Type.Literal('expired'),
    Type.Literal('revoked'),
  ],
  {
    description:
      'active -> submitted -> accepted/rejected; active -> released/expired/revoked; revise sends submitted back to active',
  },
);

export const Claim = Type.Object(
  {
    id: Id('Claim id'),
    taskId: Id('Claimed task'),
    projectId: Id('Project of the task'),
    circleId: Id('Circle of the project'),
    userId: Id('Member holding the claim'),
    status: ClaimStatusSchema,
    expiresAt: Timestamp('Lease deadline: an active claim not submitted by then expires'),
    leaseStartedAt: Timestamp(
      'When the current lease began (a claim or a revise): the lease, extensions included, runs at most MAX_LEASE_SECONDS from here',
    ),
    revokeReason: Type.Union([Type.String(), Type.Null()], { description: 'Why a manager revoked it, if they did' }),
    createdAt: Timestamp('When it was claimed'),
    updatedAt: Timestamp('When its status or lease last changed'),
  },
  { description: 'A claim on a task' },
);

export const ClaimParams = Obj({ claimId: Id('Claim id') });
export const ClaimNextBody = Obj(
  { skills: Type.Optional(Skills) },
  "Skills to match; default: the caller's profile skills",
  { examples: [{ skills: ['翻译'] }, {}] },
);
export const ExtendBody = Obj(
  {
    seconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 30 * 86400,
        description:
          "New lease length from now (default: the project's lease length); capped by the longest lease allowed. Asking for no more than the lease has left changes nothing (200, the claim as it is)",
      }),
    ),
  },
  'Lease extension',
  { examples: [{ seconds: 7200 }] },
);
export const RevokeBody = Obj(
  {
    reason: Type.String({
      minLength: 1,
      maxLength: 1000,
      description: 'Why the claim is revoked; shown to the member',
    }),
  },
  'Revocation',
  { examples: [{ reason: '三天没有进展，先把任务让给其他成员。' }] },
);
export const MyClaimsQuery = Obj({ ...PageQuery, status: Type.Optional(ClaimStatusSchema) });
export const ClaimList = Page(Claim, "The caller's claims, newest first");
export const ProjectClaimsQuery = Obj({
  ...PageQuery,
  status: Type.Optional(ClaimStatusSchema),
  taskId: Type.Optional(Id('Only claims on this task')),
  userId: Type.Optional(Id("Only this member's claims (members may name only themselves)")),
});
export const ProjectClaimList = Page(Claim, "A project's claims, newest first (a member sees only their own)");
export const TaskClaimsQuery = Obj({ ...PageQuery, status: Type.Optional(ClaimStatusSchema) });
export const TaskClaimList = Page(Claim, "A task's claims, newest first: who holds it and who worked on it");
