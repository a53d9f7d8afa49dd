import { Type } from 'typebox';
import { Id, Obj, SnapshotPageQuery } from '../http/schemas.js';

export const LeaderboardQuery = Obj({
  window: Type.Optional(
    Type.Union([Type.Literal('7d'), Type.Literal('30d'), Type.Literal('all')], {
      default: '30d',
      description: 'Points of the last 7 or 30 days (rolling, up to now) or of all time; default 30d',
    }),
  ),
  me: Type.Optional(Type.Boolean({ description: "true: also answer the caller's own row as `me`" })),
  ...SnapshotPageQuery,
});

const rowFields = {
  userId: Id('Member'),
  handle: Type.String({ description: "Member's handle" }),
  displayName: Type.String({ description: "Member's display name" }),
  points: Type.Integer({ description: 'Net points in the window, every source (tasks, check-ins, adjustments)' }),
};

export const LeaderboardItem = Type.Object(
  {
    rank: Type.Integer({ minimum: 1, description: 'Standing: 1 + the members with more points (ties share it)' }),
    ...rowFields,
  },
  { description: "A member's standing" },
);

export const Leaderboard = Type.Object(
  {
    window: Type.String({ description: 'The window counted' }),
    items: Type.Array(LeaderboardItem, {
      description: 'Members with points in the window: most points first, then the earliest to score, then user id',
    }),
    nextCursor: Type.Union([Type.String(), Type.Null()], {
      description: 'Cursor for the next page of the same board; null on the last page',
    }),
    me: Type.Optional(
      Type.Object(
        {
          rank: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
            description: 'The caller’s standing; null when they earned nothing in the window',
          }),
          ...rowFields,
        },
        { description: 'The caller’s own row (with ?me=true)' },
      ),
    ),
  },
  { description: "The circle's points board" },
);
