import { Type } from 'typebox';
import { Id, Obj, Page, PageQuery, Timestamp } from '../http/schemas.js';

export const RoleSchema = Type.Union([Type.Literal('owner'), Type.Literal('admin'), Type.Literal('member')], {
  description: 'Role in the circle',
});
const JoinPolicySchema = Type.Union([Type.Literal('open'), Type.Literal('invite')], {
  description: '"open": anyone with the id may join; "invite": an invite code is needed',
});

export const CircleParams = Obj({ circleId: Id('Circle id') });
export const MemberParams = Obj({ circleId: Id('Circle id'), userId: Id("Member's user id") });

export const Circle = Type.Object(
  {
    id: Id('Circle id'),
    name: Type.String({ description: 'Circle name' }),
    description: Type.String({ description: 'What the circle is about' }),
    joinPolicy: JoinPolicySchema,
    ownerId: Id('User id of the owner'),
    timezone: Type.String({ description: 'IANA time zone the circle’s health figures count local days in' }),
    createdAt: Timestamp('When the circle was created'),
    role: RoleSchema,
  },
  { description: "A circle, with the caller's role in it" },
);

export const CreateCircleBody = Obj(
  {
    name: Type.String({ minLength: 1, maxLength: 100, description: 'Circle name, 1-100 characters' }),
    description: Type.Optional(
      Type.String({ maxLength: 2000, description: 'What the circle is about, up to 2000 characters' }),
    ),
    joinPolicy: JoinPolicySchema,
  },
  'New circle',
  { examples: [{ name: '每日读书会', description: '每天读一章，一起翻译和批注经典。', joinPolicy: 'invite' }] },
);

export const UpdateCircleBody = Obj(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Circle name, 1-100 characters' })),
    description: Type.Optional(
      Type.String({ maxLength: 2000, description: 'What the circle is about, up to 2000 characters' }),
    ),
    joinPolicy: Type.Optional(JoinPolicySchema),
    timezone: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'IANA time zone, e.g. "Asia/Shanghai" or "UTC" (default UTC): where health figures count days',
      }),
    ),
  },
  'Changes to the circle (owner); fields left out stay as they are',
  { examples: [{ description: '每天读一章：翻译、批注、讨论。', timezone: 'Asia/Shanghai' }] },
);

export const CircleList = Page(Circle, 'Circles the caller belongs to');
export const ListQuery = Obj({ ...PageQuery });

export const CreateInviteBody = Obj(
  {
    expiresInSeconds: Type.Optional(
      Type.Integer({
        minimum: 60,
        maximum: 90 * 86400,
        description: 'Validity in seconds (60 s to 90 days, default 7 days)',
      }),
    ),
    maxUses: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100000,
        description: 'How many people may join with it (default unlimited)',
      }),
    ),
  },
  'Invite options',
  { examples: [{ expiresInSeconds: 604800, maxUses: 20 }] },
);

export const Invite = Type.Object(
  {
    code: Type.String({ description: 'Invite code to pass as inviteCode when joining' }),
    expiresAt: Timestamp('When the code stops working'),
    maxUses: Type.Union([Type.Integer(), Type.Null()], { description: 'How many joins it allows; null for unlimited' }),
  },
  { description: 'An invite code' },
);

export const InviteParams = Obj({
  circleId: Id('Circle id'),
  code: Type.String({ minLength: 1, maxLength: 100, description: 'Invite code' }),
});

export const InviteListItem = Type.Object(
  {
    ...Invite.properties,
    uses: Type.Integer({ description: 'How many people have joined with it' }),
    createdBy: Id('Who created it'),
    createdAt: Timestamp('When it was created'),
  },
  { description: 'An invite code that was not revoked (expired ones included)' },
);
export const InviteList = Page(InviteListItem, "The circle's invites that were not revoked, newest first");

export const JoinBody = Obj(
  {
    inviteCode: Type.Optional(
      Type.String({ minLength: 1, maxLength: 100, description: 'Invite code; not needed for open circles' }),
    ),
  },
  'Join request',
  { examples: [{ inviteCode: 'Q7KD-M2XP' }, {}] },
);

export const Member = Type.Object(
  {
    circleId: Id('Circle id'),
    userId: Id('User id'),
    handle: Type.String({ description: "Member's handle" }),
    displayName: Type.String({ description: "Member's display name" }),
    role: RoleSchema,
    joinedAt: Timestamp('When they joined'),
  },
  { description: 'A circle membership' },
);

export const MemberList = Page(Member, 'Current members, oldest first');
export const ChangeRoleBody = Obj({ role: RoleSchema }, 'New role; "owner" transfers ownership', {
  examples: [{ role: 'admin' }],
});
