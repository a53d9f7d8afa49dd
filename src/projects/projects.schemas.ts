import { Type } from 'typebox';
import { Id, Obj, Page, PageQuery, Timestamp } from '../http/schemas.js';
import { TaskForest } from '../tasks/tasks.schemas.js';

export const MAX_SAFE_AMOUNT = Number.MAX_SAFE_INTEGER;

const ProjectStatusSchema = Type.Union(
  [
    Type.Literal('draft'),
    Type.Literal('open'),
    Type.Literal('closed'),
    Type.Literal('settled'),
    Type.Literal('cancelled'),
  ],
  { description: 'draft -> open -> closed -> settled, or cancelled' },
);

export const RewardPool = Obj(
  {
    amount: Type.Integer({
      minimum: 0,
      maximum: MAX_SAFE_AMOUNT,
      description: 'Pool size in integer minor units (e.g. cents) or points',
    }),
    unit: Type.String({
      minLength: 1,
      maxLength: 16,
      pattern: '^[A-Za-z][A-Za-z0-9_-]*$',
      description: 'Unit of the amount, e.g. "points" or "CNY_cents"',
    }),
  },
  'The reward pool settled among contributors',
);

const LeaseSeconds = Type.Integer({
  minimum: 1,
  maximum: 30 * 86400,
  description: 'Lease length of a claim in seconds (default 86400)',
});
const ReviewWindowSeconds = Type.Integer({
  minimum: 1,
  maximum: 90 * 86400,
  description:
    'Seconds a submission may wait for review before it is accepted automatically at score 100 (default 259200)',
});

export const CreateProjectBody = Obj(
  {
    title: Type.String({ minLength: 1, maxLength: 200, description: 'Project title' }),
    description: Type.Optional(
      Type.String({ maxLength: 20000, description: 'What the project is and why it matters' }),
    ),
    status: Type.Optional(
      Type.Union([Type.Literal('draft'), Type.Literal('open')], { description: 'Initial status (default open)' }),
    ),
    rewardPool: Type.Optional(RewardPool),
    leaseSeconds: Type.Optional(LeaseSeconds),
    reviewWindowSeconds: Type.Optional(ReviewWindowSeconds),
    tasks: Type.Optional(TaskForest),
  },
  'New project, optionally with its whole task breakdown',
  {
    examples: [
      {
        title: '《瓦尔登湖》第一章 翻译与批注',
        description: '把第一章「经济」译成中文，并为难句写批注。',
        rewardPool: { amount: 100000, unit: 'CNY_cents' },
        leaseSeconds: 86400,
        tasks: [
          {
            key: 'translate',
            title: '翻译第一章',
            children: [
              { key: 'p1', title: '翻译第 1-10 段', weight: 3, skills: ['翻译'] },
              { key: 'p2', title: '翻译第 11-20 段', weight: 3, skills: ['翻译'] },
            ],
          },
          { title: '校对全章译文', weight: 2, skills: ['校对'], dependsOn: ['translate'] },
        ],
      },
    ],
  },
);

export const PatchProjectBody = Obj(
  {
    title: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Project title' })),
    description: Type.Optional(Type.String({ maxLength: 20000, description: 'Project description' })),
    status: Type.Optional(
      Type.Union([Type.Literal('draft'), Type.Literal('open'), Type.Literal('closed'), Type.Literal('cancelled')], {
        description: 'New status (settled is reached only by settling)',
      }),
    ),
    rewardPool: Type.Optional(RewardPool),
    leaseSeconds: Type.Optional(LeaseSeconds),
    reviewWindowSeconds: Type.Optional(ReviewWindowSeconds),
  },
  'Project changes',
  { examples: [{ status: 'closed' }, { rewardPool: { amount: 120000, unit: 'CNY_cents' } }] },
);

const Progress = Type.Object(
  {
    tasksTotal: Type.Integer({ description: 'All tasks, parents included' }),
    tasksOpen: Type.Integer({ description: 'Tasks not yet done' }),
    tasksDone: Type.Integer({ description: 'Tasks done' }),
    liveClaims: Type.Integer({ description: 'Claims currently holding a slot' }),
    pointsAccepted: Type.Integer({ description: 'Contribution points recorded (weight x score, plus adjustments)' }),
  },
  { description: 'Where the project stands' },
);

export const Project = Type.Object(
  {
    id: Id('Project id'),
    circleId: Id('Circle id'),
    title: Type.String({ description: 'Project title' }),
    description: Type.String({ description: 'Project description' }),
    status: ProjectStatusSchema,
    rewardPool: Type.Object(
      {
        amount: Type.Integer({ description: 'Pool size in integer minor units or points' }),
        unit: Type.String({ description: 'Unit of the amount' }),
      },
      { description: 'The reward pool' },
    ),
    leaseSeconds: Type.Integer({ description: 'Lease length of a claim in seconds' }),
    reviewWindowSeconds: Type.Integer({ description: 'Review window in seconds' }),
    createdBy: Id('User who created it'),
    createdAt: Timestamp('When it was created'),
    updatedAt: Timestamp('When it last changed'),
    progress: Type.Optional(Progress),
  },
  { description: 'A project' },
);

export const ProjectList = Page(Project, 'Projects of the circle, oldest first');
export const ProjectListQuery = Obj({ ...PageQuery });
