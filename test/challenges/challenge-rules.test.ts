import t from 'tap';
import fc from 'fast-check';
import { DomainError } from '../../src/errors.js';
import { contentKey, contentLength, normalizeContent } from '../../src/challenges/checkin-content.js';
import {
  checkContent,
  checkSchedule,
  evaluationDay,
  planChallengeEdit,
  planCheckin,
} from '../../src/challenges/challenge-rules.js';

// The challenge rules without HTTP: which day a check-in is for, make-up limits, content rules,
// what an edit may change and when.

const code = (fn: () => unknown) => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof DomainError) return `${err.kind}:${err.code}`;
    throw err;
  }
};

const rules = { startsOn: '2026-03-01', endsOn: '2026-03-31', makeUpAllowance: 2, makeUpWindowDays: 7 };
/** A member since before the challenge. */
const LONG_AGO = '2025-01-01';

t.test('planCheckin: today, make-ups, and every refusal', async (t) => {
  t.same(planCheckin(rules, '2026-03-10', undefined, 0, LONG_AGO), { localDate: '2026-03-10', makeUp: false });
  t.same(
    planCheckin(rules, '2026-03-10', '2026-03-10', 2, LONG_AGO),
    { localDate: '2026-03-10', makeUp: false },
    'today',
  );
  t.same(
    planCheckin(rules, '2026-03-10', '2026-03-03', 1, LONG_AGO),
    { localDate: '2026-03-03', makeUp: true },
    '7 back',
  );
  t.equal(
    code(() => planCheckin(rules, '2026-03-10', '2026-03-02', 0, LONG_AGO)),
    'conflict:makeup_window_passed',
  );
  // A member since 2026-03-06 missed nothing before it: no make-up, even inside the window.
  t.equal(
    code(() => planCheckin(rules, '2026-03-10', '2026-03-05', 0, '2026-03-06')),
    'conflict:date_before_joining',
  );
  t.same(
    planCheckin(rules, '2026-03-10', '2026-03-06', 0, '2026-03-06'),
    { localDate: '2026-03-06', makeUp: true },
    'the day they joined can be made up',
  );
  t.same(
    planCheckin(rules, '2026-03-10', undefined, 0, '2026-03-10'),
    { localDate: '2026-03-10', makeUp: false },
    'today',
  );
  t.equal(
    code(() => planCheckin(rules, '2026-03-10', '2026-03-09', 2, LONG_AGO)),
    'conflict:no_makeups_left',
  );
  t.equal(
    code(() => planCheckin(rules, '2026-03-10', '2026-03-11', 0, LONG_AGO)),
    'invalid:checkin_date_in_future',
  );
  t.equal(
    code(() => planCheckin(rules, '2026-03-10', '2026-02-31', 0, LONG_AGO)),
    'invalid:invalid_date',
  );
  t.equal(
    code(() => planCheckin(rules, '2026-03-02', '2026-02-28', 0, LONG_AGO)),
    'conflict:date_outside_challenge',
  );
  t.equal(
    code(() => planCheckin(rules, '2026-02-28', undefined, 0, LONG_AGO)),
    'conflict:challenge_not_started',
  );
  t.equal(
    code(() => planCheckin(rules, '2026-04-01', undefined, 0, LONG_AGO)),
    'conflict:challenge_ended',
  );
  t.equal(
    code(() => planCheckin(rules, '2026-04-01', '2026-03-31', 0, LONG_AGO)),
    'conflict:challenge_ended',
    'no make-up',
  );
  t.same(planCheckin(rules, '2026-03-31', undefined, 0, LONG_AGO).localDate, '2026-03-31', 'the last day');
  t.same(planCheckin(rules, '2026-03-01', undefined, 0, LONG_AGO).localDate, '2026-03-01', 'the first day');
});

t.test('content: normalized (NFKC, case folded, whitespace collapsed) and measured in characters', async (t) => {
  t.equal(normalizeContent('  Hello\n\t  WORLD  '), 'hello world');
  t.equal(normalizeContent('ＨＥＬＬＯ　ｗｏｒｌｄ'), 'hello world', 'full-width letters and space');
  t.equal(normalizeContent('Straße'), normalizeContent('STRASSE'), 'ß folds to ss');
  t.equal(normalizeContent('STRAẞE'), 'strasse', 'capital sharp s too');
  t.equal(normalizeContent('ΌΣΟΣ'), normalizeContent('όσος'), 'final sigma');
  t.equal(normalizeContent('ﬁne'), 'fine', 'ligature');
  t.equal(normalizeContent('e\u0301'), 'é', 'composed');
  t.equal(contentLength('慢慢来，比较快。'), 8, 'CJK characters count one each');
  t.equal(contentLength('👍🏽ok'), 3, 'an emoji with its skin tone is one character');
  t.equal(normalizeContent('\u200b\u200c\u200d\ufeff\u00ad\u2060'), '', 'invisible characters are nothing');
  t.equal(
    normalizeContent('re\u200bad\u2060 chap\ufe0fter 3'),
    normalizeContent('read chapter 3'),
    'and hide no repeat',
  );
  t.equal(
    code(() => checkContent('\u200b'.repeat(20), 3)),
    'invalid:content_too_short',
    'nor make a check-in long enough',
  );
  // Default-ignorable code points outside the format class: the combining grapheme joiner, the
  // Hangul fillers (half- and full-width), a Khmer inherent vowel, a Mongolian variation selector.
  t.equal(
    normalizeContent('read\u034f chapter\u17b4 3'),
    normalizeContent('read chapter 3'),
    'nor do invisible joiners and fillers',
  );
  t.equal(normalizeContent('\u115f\u1160\u3164\uffa0\u180b'), '', 'the fillers are nothing');
  t.equal(
    code(() => checkContent('\u3164 \u3164 \u3164', 3)),
    'invalid:content_too_short',
    'and make no check-in long enough',
  );
  t.equal(normalizeContent('\u0600١'), '١', 'a format control outside the default-ignorable set is dropped too');
  t.equal(contentKey('a'), contentKey(normalizeContent(' A ')));
  t.not(contentKey('a'), contentKey('b'));
  t.equal(checkContent('  Ten chars!  ', 10), 'ten chars!');
  t.equal(
    code(() => checkContent('  nine   ch ', 10)),
    'invalid:content_too_short',
    'spaces collapse first',
  );
  t.equal(
    code(() => checkContent('   ', 0)),
    'invalid:content_too_short',
    'never empty',
  );
});

t.test('property: normalizing is idempotent and ignores case and spacing', async () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (text) => {
      const once = normalizeContent(text);
      return (
        normalizeContent(once) === once &&
        normalizeContent(` ${text.toUpperCase()}\n`) === normalizeContent(text.toLowerCase())
      );
    }),
    { numRuns: 20000 },
  );
});

const now = Date.parse('2026-03-10T12:00:00Z');
const schedule = { startsOn: '2026-03-10', endsOn: '2026-03-20', timezone: 'Asia/Shanghai', dayStartsAt: 0 };

t.test('checkSchedule', async (t) => {
  t.equal(
    code(() => checkSchedule(schedule, now)),
    'ok',
  );
  t.equal(
    code(() => checkSchedule({ ...schedule, timezone: 'Mars/Base' }, now)),
    'invalid:invalid_timezone',
  );
  for (const timezone of ['BST', 'IST', 'CST'])
    t.equal(
      code(() => checkSchedule({ ...schedule, timezone }, now)),
      'invalid:invalid_timezone',
      timezone,
    );
  t.equal(
    code(() => checkSchedule({ ...schedule, endsOn: '2026-02-30' }, now)),
    'invalid:invalid_date',
  );
  t.equal(
    code(() => checkSchedule({ ...schedule, endsOn: '2026-03-09' }, now)),
    'invalid:invalid_challenge_dates',
  );
  t.equal(
    code(() => checkSchedule({ ...schedule, startsOn: '2026-01-01', endsOn: '2027-01-02' }, now)),
    'invalid:invalid_challenge_dates',
    '367 days',
  );
  t.equal(
    code(() => checkSchedule({ ...schedule, startsOn: '2026-01-01', endsOn: '2027-01-01' }, now)),
    'ok',
  );
  t.equal(
    code(() => checkSchedule({ ...schedule, startsOn: '2026-03-01', endsOn: '2026-03-09' }, now)),
    'invalid:invalid_challenge_dates',
    'already over in its zone',
  );
  // 2026-03-10T12:00Z is already 11 March in Kiritimati and still 10 March in Pago Pago.
  const oneDay = { startsOn: '2026-03-10', endsOn: '2026-03-10', dayStartsAt: 0 };
  t.equal(
    code(() => checkSchedule({ ...oneDay, timezone: 'Pacific/Kiritimati' }, now)),
    'invalid:invalid_challenge_dates',
  );
  t.equal(
    code(() => checkSchedule({ ...oneDay, timezone: 'Pacific/Pago_Pago' }, now)),
    'ok',
  );
});

t.test('planChallengeEdit: rules before the start, zone and day start never once checked in', async (t) => {
  const current = {
    ...schedule,
    startsOn: '2026-03-12',
    title: 'Read',
    description: '',
    status: 'active' as const,
    pointsPerCheckin: 10,
    minContentLength: 1,
    makeUpAllowance: 0,
    makeUpWindowDays: 7,
    freezesPerMember: 0,
  };
  const before = { now, hasCheckins: false };
  t.same(planChallengeEdit(current, { title: 'Write', pointsPerCheckin: 10 }, before), { title: 'Write' });
  t.same(planChallengeEdit(current, { timezone: 'Europe/Paris', dayStartsAt: 60 }, before), {
    timezone: 'Europe/Paris',
    dayStartsAt: 60,
  });
  t.equal(
    code(() => planChallengeEdit(current, { timezone: 'Nowhere/City' }, before)),
    'invalid:invalid_timezone',
  );
  t.equal(
    code(() => planChallengeEdit(current, { endsOn: '2026-03-11' }, before)),
    'invalid:invalid_challenge_dates',
  );
  const started = { now: Date.parse('2026-03-12T00:00:00+08:00'), hasCheckins: false };
  t.equal(
    code(() => planChallengeEdit(current, { pointsPerCheckin: 5 }, started)),
    'conflict:challenge_started',
  );
  t.same(planChallengeEdit(current, { description: 'Every day' }, started), { description: 'Every day' });
  t.equal(
    code(() => planChallengeEdit(current, { dayStartsAt: 30 }, { now, hasCheckins: true })),
    'conflict:challenge_has_checkins',
  );
  t.equal(
    code(() => planChallengeEdit({ ...current, status: 'cancelled' }, { title: 'x' }, before)),
    'conflict:challenge_cancelled',
  );
  t.equal(
    code(() => planChallengeEdit({ ...current, status: 'closed' }, { title: 'x' }, before)),
    'conflict:challenge_ended',
  );
});

t.test('evaluationDay: the day after the last once the challenge is over', async (t) => {
  t.equal(evaluationDay('2026-03-15', '2026-03-20'), '2026-03-15');
  t.equal(evaluationDay('2026-04-15', '2026-03-20'), '2026-03-21');
});
