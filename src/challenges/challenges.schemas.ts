import { Type } from 'typebox';
import { Id, Obj, Page, PageQuery, Timestamp } from '../http/schemas.js';
import { MAX_CHALLENGE_DAYS } from './challenge-rules.js';

const LocalDate = (description: string) =>
  Type.String({ format: 'date', maxLength: 10, description: `${description} (YYYY-MM-DD)` });

const Title = Type.String({ minLength: 1, maxLength: 200, description: 'Title, 1-200 characters' });
const Description = Type.String({ maxLength: 10000, description: 'What members do each day, up to 10000 characters' });

const ruleFields = {
  startsOn: LocalDate("First day, in the challenge's time zone"),
  endsOn: LocalDate(`Last day, inclusive; at most ${MAX_CHALLENGE_DAYS} days after the first, not before today`),
  timezone: Type.String({
    minLength: 1,
    maxLength: 64,
    description: 'IANA time zone the days are counted in, e.g. Asia/Shanghai; fixed once anyone has checked in',
  }),
  dayStartsAt: Type.Integer({
    minimum: 0,
    maximum: 360,
    description:
      'Minutes after local midnight at which a challenge day begins (0-360, default 0): with 120, a check-in at 01:30 counts for the day before; fixed once anyone has checked in',
  }),
  pointsPerCheckin: Type.Integer({
    minimum: 0,
    maximum: 1000000,
    description: "Contribution points each check-in earns in the circle's ledger",
  }),
  minContentLength: Type.Integer({
    minimum: 0,
    maximum: 10000,
    description: 'Fewest characters a check-in must have, whitespace collapsed (default 1)',
  }),
  makeUpAllowance: Type.Integer({
    minimum: 0,
    maximum: 366,
    description: 'Make-up check-ins for missed days each member may use (default 0)',
  }),
  makeUpWindowDays: Type.Integer({
    minimum: 1,
    maximum: 366,
    description: 'How many days back a make-up may reach (default 7)',
  }),
  freezesPerMember: Type.Integer({
    minimum: 0,
    maximum: 366,
    description: "Missed days bridged automatically to keep a member's streak alive (default 0); they earn no points",
  }),
};

export const CreateChallengeBody = Obj(
  {
    title: Title,
    description: Type.Optional(Description),
    startsOn: ruleFields.startsOn,
    endsOn: ruleFields.endsOn,
    timezone: ruleFields.timezone,
    dayStartsAt: Type.Optional(ruleFields.dayStartsAt),
    pointsPerCheckin: ruleFields.pointsPerCheckin,
    minContentLength: Type.Optional(ruleFields.minContentLength),
    makeUpAllowance: Type.Optional(ruleFields.makeUpAllowance),
    makeUpWindowDays: Type.Optional(ruleFields.makeUpWindowDays),
    freezesPerMember: Type.Optional(ruleFields.freezesPerMember),
  },
  'A daily check-in challenge',
  {
    examples: [
      {
        title: '21 天晨读打卡',
        description: '每天读一篇文章，摘抄最打动你的一段话。',
        startsOn: '2026-03-01',
        endsOn: '2026-03-21',
        timezone: 'Asia/Shanghai',
        pointsPerCheckin: 10,
        minContentLength: 20,
        makeUpAllowance: 2,
      },
    ],
  },
);

export const EditChallengeBody = Obj(
  {
    title: Type.Optional(Title),
    description: Type.Optional(Description),
    startsOn: Type.Optional(ruleFields.startsOn),
    endsOn: Type.Optional(ruleFields.endsOn),
    timezone: Type.Optional(ruleFields.timezone),
    dayStartsAt: Type.Optional(ruleFields.dayStartsAt),
    pointsPerCheckin: Type.Optional(ruleFields.pointsPerCheckin),
    minContentLength: Type.Optional(ruleFields.minContentLength),
    makeUpAllowance: Type.Optional(ruleFields.makeUpAllowance),
    makeUpWindowDays: Type.Optional(ruleFields.makeUpWindowDays),
    freezesPerMember: Type.Optional(ruleFields.freezesPerMember),
  },
  'Changes: title and description any time; the rules only before the first day; fields left out stay',
  { examples: [{ title: '21 天晨读打卡（第二期）' }] },
);

export const CancelChallengeBody = Obj(
  { reason: Type.Optional(Type.String({ maxLength: 1000, description: 'Why, shown to members' })) },
  'Cancellation',
  { examples: [{ reason: '春节假期，下月重新开始。' }] },
);

export const ChallengeParams = Obj({ challengeId: Id('Challenge id') });

const StatusSchema = Type.Union([Type.Literal('active'), Type.Literal('cancelled'), Type.Literal('closed')], {
  description: 'active (upcoming or running), cancelled, or closed (its last day is over and it was summed up)',
});

const challengeProperties = {
  id: Id('Challenge id'),
  circleId: Id('Circle'),
  title: Type.String({ description: 'Title' }),
  description: Type.String({ description: 'Description' }),
  startsOn: Type.String({ description: 'First day (local date)' }),
  endsOn: Type.String({ description: 'Last day, inclusive (local date)' }),
  timezone: Type.String({ description: 'IANA time zone of its days' }),
  dayStartsAt: Type.Integer({ description: 'Minutes after local midnight at which its days begin' }),
  pointsPerCheckin: Type.Integer({ description: 'Points per check-in' }),
  minContentLength: Type.Integer({ description: 'Fewest characters per check-in' }),
  makeUpAllowance: Type.Integer({ description: 'Make-ups per member' }),
  makeUpWindowDays: Type.Integer({ description: 'How far back a make-up reaches, in days' }),
  freezesPerMember: Type.Integer({ description: 'Missed days bridged per member' }),
  status: StatusSchema,
  cancelReason: Type.Union([Type.String(), Type.Null()], { description: 'Why it was cancelled, if it was' }),
  today: Type.String({ description: "The challenge day it is now in the challenge's zone (local date)" }),
  startsAt: Timestamp('When its first day begins'),
  endsAt: Timestamp('When its last day ends (it is closed then)'),
  createdBy: Id('Who created it'),
  createdAt: Timestamp('Created'),
  updatedAt: Timestamp('Last changed'),
  closedAt: Type.Union([Timestamp('When it was closed'), Type.Null()], {
    description: 'When it was closed, if it was',
  }),
};

export const Challenge = Type.Object(challengeProperties, { description: 'A check-in challenge' });

const StreakSchema = Type.Object(
  {
    current: Type.Integer({ description: 'Check-in days in the run alive now (frozen days bridge but do not count)' }),
    best: Type.Integer({ description: 'Longest run' }),
  },
  { description: 'Streak' },
);

export const MyProgress = Type.Object(
  {
    checkins: Type.Integer({ description: 'Check-ins so far' }),
    checkedInToday: Type.Boolean({ description: 'Whether today has a check-in' }),
    streak: StreakSchema,
    makeUpsLeft: Type.Integer({ description: 'Make-ups still available' }),
    freezesLeft: Type.Integer({ description: 'Freezes still available' }),
  },
  { description: "The caller's progress" },
);

export const ChallengeDetail = Type.Object(
  { ...challengeProperties, me: MyProgress },
  { description: "A check-in challenge with the caller's progress" },
);

export const ChallengeList = Page(Challenge, "The circle's challenges, newest first");
export const ChallengeListQuery = Obj({ ...PageQuery });

export const CheckinBody = Obj(
  {
    content: Type.String({
      minLength: 1,
      maxLength: 10000,
      description: "Today's check-in: the passage, the words written (up to 10000 characters)",
    }),
    links: Type.Optional(
      Type.Array(Type.String({ format: 'uri', maxLength: 2000, description: 'A link' }), {
        maxItems: 10,
        description: 'Links (at most 10)',
      }),
    ),
    date: Type.Optional(
      LocalDate('Only for a make-up: a past day of the challenge within the make-up window; uses one make-up'),
    ),
  },
  'A check-in',
  {
    examples: [
      { content: '今天读《瓦尔登湖》：「我们的生活被琐碎消耗掉了……简单，简单，再简单！」' },
      { content: '补卡：昨天读了《人间词话》，摘抄「昨夜西风凋碧树，独上高楼，望尽天涯路。」', date: '2026-03-04' },
    ],
  },
);

const checkinProperties = {
  id: Id('Check-in id'),
  challengeId: Id('Challenge'),
  userId: Id('Member'),
  localDate: Type.String({ description: 'The challenge day it counts for (local date)' }),
  makeUp: Type.Boolean({ description: 'Whether it was a make-up for a past day' }),
  points: Type.Integer({ description: 'Points it earned' }),
  content: Type.String({ description: 'Content' }),
  links: Type.Array(Type.String(), { description: 'Links' }),
  createdAt: Timestamp('When it was made'),
};

export const Checkin = Type.Object(checkinProperties, { description: 'A check-in' });

export const CheckinResult = Type.Object(
  {
    ...checkinProperties,
    streak: StreakSchema,
    checkins: Type.Integer({ description: "The member's check-ins in this challenge" }),
    makeUpsLeft: Type.Integer({ description: 'Make-ups still available' }),
    freezesLeft: Type.Integer({ description: 'Freezes still available' }),
  },
  { description: "A check-in with the member's streak after it" },
);

export const CheckinList = Page(Checkin, "The caller's check-ins of the challenge, latest day first");
export const CheckinListQuery = Obj({ ...PageQuery });

export const LeaderboardQuery = Obj({
  ...PageQuery,
  sort: Type.Optional(
    Type.Union([Type.Literal('checkins'), Type.Literal('current'), Type.Literal('best')], {
      description:
        'checkins (default): check-ins, then current streak, then best; current: current streak, then best, then check-ins; best: best streak, then current, then check-ins. Ties: user id',
    }),
  ),
  me: Type.Optional(Type.Boolean({ description: "true: only the caller's own row (with its rank), no paging" })),
});

export const LeaderboardEntry = Type.Object(
  {
    rank: Type.Integer({ description: '1 + the members strictly ahead (equal values share a rank)' }),
    userId: Id('Member'),
    handle: Type.String({ description: 'Handle' }),
    displayName: Type.String({ description: 'Display name' }),
    checkins: Type.Integer({ description: 'Check-ins' }),
    currentStreak: Type.Integer({ description: 'Current streak' }),
    bestStreak: Type.Integer({ description: 'Best streak' }),
  },
  { description: 'A row of the challenge leaderboard' },
);

export const Leaderboard = Page(LeaderboardEntry, 'Members who checked in, best first');
