import { Type } from 'typebox';
import { Id, Obj } from '../http/schemas.js';

export const HealthQuery = Obj({
  window: Type.Optional(
    Type.Union([Type.Literal('7d'), Type.Literal('30d'), Type.Literal('90d')], {
      default: '30d',
      description: 'The last 7, 30 or 90 local days, today included; default 30d',
    }),
  ),
});

const Count = (description: string) => Type.Integer({ minimum: 0, description });
const Ratio = (description: string) => Type.Number({ minimum: 0, maximum: 1, description });

export const CircleHealth = Type.Object(
  {
    circleId: Id('Circle'),
    window: Type.String({ description: 'The window counted' }),
    timezone: Type.String({ description: 'The circle’s time zone: local days are counted in it' }),
    today: Type.String({ format: 'date', description: 'The local date now' }),
    windowStart: Type.String({ format: 'date', description: 'The first local day of the window' }),
    members: Count('Current members, the owner left out (as in every member figure)'),
    activeMembers: Count('Members who claimed, submitted, checked in or earned points in the window'),
    seedMembers: Type.Array(
      Type.Object({
        userId: Id('Member'),
        handle: Type.String({ description: "Member's handle" }),
        activeDays: Type.Integer({ description: 'Days active among the last 7 local days' }),
      }),
      { description: 'Members active on at least 4 of the last 7 local days, most active first' },
    ),
    absenceFactor: Count('Contributor absence factor: the fewest members whose points make half of the window’s'),
    top20Share: Type.Object(
      {
        members: Count('The top 20% of members, rounded up'),
        share: Ratio('Their share of the window’s points, to 4 decimals'),
      },
      { description: 'Concentration: the share of points held by the top 20% of members' },
    ),
    gini: Ratio('Gini coefficient of the window’s points over all members, zeros included, to 4 decimals'),
    engagementLevels: Type.Object(
      {
        leading: Count('Active on at least 30 of the last 90 days'),
        contributing: Count('Active on at least 7 of the last 30 days (and not leading)'),
        participating: Count('Active on at least 2 of the last 7 days (and neither of the above)'),
        none: Count('Everyone else'),
      },
      { description: 'Members by the highest presence milestone they reach (Orbit model)' },
    ),
    expiringClaims: Count('Active claims whose lease ends in the next 24 hours'),
    staleSubmissions: Count('Submitted work waiting for review for more than 48 hours'),
    medianClaimToSubmissionSeconds: Type.Union([Type.Integer(), Type.Null()], {
      description: 'Median seconds from a claim to its first submission, over first submissions in the window',
    }),
    weeklyThroughput: Type.Array(
      Type.Object({
        from: Type.String({ format: 'date', description: 'First local day of the week' }),
        to: Type.String({ format: 'date', description: 'Last local day of the week' }),
        count: Count('Tasks completed (leaves)'),
      }),
      { description: 'Tasks completed per week for the last 8 weeks (seven local days ending today, and before)' },
    ),
    checkinRates: Type.Array(
      Type.Object({
        challengeId: Id('Challenge'),
        title: Type.String({ description: 'Challenge title' }),
        checkedIn: Count('Members who checked in yesterday'),
        participants: Count('Members taking part'),
        rate: Ratio('checkedIn / participants, to 4 decimals'),
      }),
      { description: 'Each live challenge’s check-in rate for yesterday' },
    ),
  },
  { description: 'A circle’s health figures' },
);
