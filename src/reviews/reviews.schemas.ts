import { Type } from 'typebox';
import { Id, Obj, Page, PageQuery, Timestamp } from '../http/schemas.js';

const DecisionSchema = Type.Union([Type.Literal('accept'), Type.Literal('reject'), Type.Literal('revise')], {
  description:
    'accept, reject (feedback required) or revise (feedback required; the claim returns to active with a fresh lease)',
});

export const SubmitBody = Obj(
  {
    content: Type.String({
      minLength: 1,
      maxLength: 50000,
      description: 'The work, or a description of it (up to 50000 characters)',
    }),
    links: Type.Optional(
      Type.Array(Type.String({ format: 'uri', maxLength: 2000, description: 'A link to the work' }), {
        maxItems: 20,
        description: 'Links to the work (at most 20)',
      }),
    ),
  },
  'A submission',
  {
    examples: [
      {
        content: '第 1-10 段译文：我写下这些文字的时候，独自住在森林里……',
        links: ['https://example.com/walden/ch1-p1-10'],
      },
    ],
  },
);

export const Submission = Type.Object(
  {
    id: Id('Submission id'),
    claimId: Id('Claim it belongs to'),
    revision: Type.Integer({ description: '1 for the first submission, then one more per revision' }),
    content: Type.String({ description: 'The work' }),
    links: Type.Array(Type.String(), { description: 'Links to the work' }),
    reviewDueAt: Timestamp('If not reviewed by then, it is accepted automatically at score 100'),
    createdAt: Timestamp('When it was submitted'),
  },
  { description: 'A submission of work' },
);

export const ReviewBody = Obj(
  {
    decision: DecisionSchema,
    score: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 200,
        description: 'Quality in percent (0-200, default 100); points = weight x score',
      }),
    ),
    feedback: Type.Optional(
      Type.String({ maxLength: 5000, description: 'What was good or what to change; required for reject and revise' }),
    ),
  },
  'A review decision',
  {
    examples: [
      { decision: 'accept', score: 120, feedback: '译文流畅，注释很用心。' },
      { decision: 'revise', feedback: '第 3 段漏译了一句，请补上。' },
    ],
  },
);

export const Review = Type.Object(
  {
    id: Id('Review id'),
    claimId: Id('Reviewed claim'),
    submissionId: Id('Reviewed submission'),
    decision: DecisionSchema,
    score: Type.Union([Type.Integer(), Type.Null()], {
      description: 'Score in percent; null when not given for reject or revise',
    }),
    feedback: Type.String({ description: 'Reviewer feedback' }),
    reviewerId: Type.Union([Id('Reviewer'), Type.Null()], {
      description: 'Reviewer; null when accepted automatically',
    }),
    automatic: Type.Boolean({ description: 'Accepted automatically after the review window' }),
    points: Type.Union([Type.Integer(), Type.Null()], { description: 'Contribution points recorded (accept only)' }),
    createdAt: Timestamp('When the review was made'),
  },
  { description: 'A review' },
);

const ReviewSummary = Type.Object(
  {
    id: Id('Review id'),
    decision: DecisionSchema,
    score: Type.Union([Type.Integer(), Type.Null()], { description: 'Score in percent' }),
    feedback: Type.String({ description: 'Reviewer feedback' }),
    reviewerId: Type.Union([Id('Reviewer'), Type.Null()], { description: 'Reviewer; null when automatic' }),
    automatic: Type.Boolean({ description: 'Accepted automatically' }),
    createdAt: Timestamp('When the review was made'),
  },
  { description: 'The review of this revision' },
);

export const SubmissionHistory = Type.Object(
  {
    items: Type.Array(
      Type.Object(
        {
          ...Submission.properties,
          review: Type.Union([ReviewSummary, Type.Null()], { description: 'Its review, if reviewed' }),
        },
        { description: 'A revision and its review' },
      ),
      { description: 'Every revision, oldest first' },
    ),
    nextCursor: Type.Union([Type.String(), Type.Null()], {
      description: "Always null: a claim's history fits one page",
    }),
  },
  { description: 'Submission history of a claim' },
);

export const ReviewQueueQuery = Obj({ ...PageQuery });

export const ReviewQueueItem = Type.Object(
  {
    claimId: Id('The submitted claim: review it with POST /v1/claims/{claimId}/reviews'),
    taskId: Id('Task the work is for'),
    taskTitle: Type.String({ description: 'Title of the task' }),
    projectId: Id('Project of the task'),
    userId: Id('Member who submitted the work'),
    handle: Type.String({ description: "The member's handle" }),
    submissionId: Id('The latest submission, the one a review decides on'),
    revision: Type.Integer({ description: 'Revision number of the latest submission (1 for the first)' }),
    submittedAt: Timestamp('When the latest submission was handed in; the queue is ordered by it'),
    autoAcceptAt: Timestamp('When the latest submission is accepted automatically at score 100 if nobody reviews it'),
    submissionsUrl: Type.String({
      description: "Path of the claim's submissions (content, links and earlier revisions with their reviews)",
    }),
  },
  { description: 'A submitted claim waiting for review' },
);

export const ReviewQueue = Page(ReviewQueueItem, 'Submitted claims of the circle, oldest submission first');
