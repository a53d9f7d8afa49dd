import t from 'tap';
import { DomainError } from '../../src/errors.js';
import {
  assertIanaTimeZone,
  assertPostgresKnowsTimeZone,
  invalidTimezone,
  isIanaTimeZone,
} from '../../src/circles/timezones.js';
import { createTestEnv } from '../helper.js';

// The one time-zone check of circles and challenges: an IANA name this Node knows
// (isIanaTimeZone) that Postgres knows by exactly that spelling (assertPostgresKnowsTimeZone).

const KNOWN = [
  'UTC',
  'Asia/Shanghai',
  'Europe/London',
  'America/Argentina/Buenos_Aires',
  'Etc/GMT+5',
  'Australia/Lord_Howe',
  'Asia/Kolkata',
  'Asia/Calcutta',
];
const ABBREVIATIONS = ['BST', 'IST', 'CST', 'EST', 'GMT', 'PST8PDT'];
const OTHER_CASE = ['europe/london', 'EUROPE/LONDON', 'Asia/shanghai', 'utc', 'etc/gmt+5'];

/** The code a call fails with, or 'ok'. */
async function outcome(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    if (err instanceof DomainError) return `${err.kind}:${err.code}`;
    throw err;
  }
}

t.test('isIanaTimeZone: IANA names Node knows; no abbreviations, offsets or made-up names', async (t) => {
  for (const zone of KNOWN) t.ok(isIanaTimeZone(zone), zone);
  // Why abbreviations are refused: Intl would take them, and read them as one place of many.
  t.equal(new Intl.DateTimeFormat('en-US', { timeZone: 'BST' }).resolvedOptions().timeZone, 'Asia/Dhaka');
  for (const zone of [
    ...ABBREVIATIONS,
    '',
    '+08:00',
    'UTC+8',
    'Mars/Olympus',
    'Asia/../UTC',
    'asia/shanghai/x',
    '/Asia/Shanghai',
    `Asia/${'x'.repeat(70)}`,
    'x'.repeat(70),
  ])
    t.notOk(isIanaTimeZone(zone), JSON.stringify(zone));
  t.equal(await outcome(() => assertIanaTimeZone('CST')), 'invalid:invalid_timezone');
  t.equal(await outcome(() => assertIanaTimeZone('Asia/Shanghai')), 'ok');
});

t.test('assertPostgresKnowsTimeZone: exactly the spelling Postgres lists', async (t) => {
  const { db } = await createTestEnv(t);
  for (const zone of KNOWN) t.equal(await outcome(() => assertPostgresKnowsTimeZone(db, zone)), 'ok', zone);
  for (const zone of [...OTHER_CASE, 'BST', 'IST', 'CST', 'Mars/Olympus']) {
    t.equal(
      await outcome(() => assertPostgresKnowsTimeZone(db, zone)),
      'invalid:invalid_timezone',
      JSON.stringify(zone),
    );
  }
  // Node alone would let another letter case through: Postgres is the one that refuses it.
  for (const zone of OTHER_CASE.filter((z) => z !== 'utc')) t.ok(isIanaTimeZone(zone), `${zone}: Intl takes any case`);
  t.notOk(isIanaTimeZone('utc'), 'the one name without a slash is spelled UTC');
});

t.test('invalidTimezone: one problem for circles and challenges', async (t) => {
  const err = invalidTimezone('BST');
  t.match(err, { kind: 'invalid', code: 'invalid_timezone', message: /"BST" is not an IANA time zone name/ });
  t.same(err.errors, [{ path: 'body/timezone', message: 'must be an IANA time zone name' }]);
});
