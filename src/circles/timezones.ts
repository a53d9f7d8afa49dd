import { sql } from 'kysely';
import { invalid } from '../errors.js';
import type { Executor } from '../infra/postgres.js';

// The one check of a time zone a client names, for circles (health figures) and challenges (check-in
// days). A zone is an IANA name ("Asia/Shanghai", "UTC") that both Node and Postgres know, in the
// spelling Postgres lists: local days follow its daylight-saving rules, and the two count the same
// days. Offsets ("+08:00") and abbreviations ("CST") are refused: they carry no rules, and
// abbreviations are ambiguous (Intl reads "BST" as Asia/Dhaka, "IST" as Asia/Calcutta, "CST" as
// America/Chicago, Postgres reads each differently again). Intl also takes any letter case
// ("europe/london"), which Postgres's list does not: the exact spelling is Postgres's to judge.

const IANA_NAME = /^(?:UTC|[A-Za-z][A-Za-z_-]*(?:\/[A-Za-z0-9][A-Za-z0-9_+-]*)+)$/;
/** Longer than any IANA name (the longest is 32 characters), as the request schemas allow. */
const MAX_LENGTH = 64;

/** Whether `name` looks like an IANA zone and this runtime knows it (Postgres is asked separately). */
export function isIanaTimeZone(name: string): boolean {
  if (name.length > MAX_LENGTH || !IANA_NAME.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** 400 invalid_timezone, the answer to every zone either check refuses. */
export const invalidTimezone = (name: string) =>
  invalid('invalid_timezone', `"${name}" is not an IANA time zone name such as "Asia/Shanghai" or "UTC".`, [
    { path: 'body/timezone', message: 'must be an IANA time zone name' },
  ]);

/** Throws 400 invalid_timezone unless `name` passes isIanaTimeZone. */
export function assertIanaTimeZone(name: string): void {
  if (!isIanaTimeZone(name)) throw invalidTimezone(name);
}

/**
 * Throws 400 invalid_timezone unless Postgres knows `name` by exactly this spelling
 * (pg_timezone_names reads its own tz database, which can lag Node's, and compares case-sensitively).
 * Postgres counts local days with the zone (health figures, check-in rates), so it must agree.
 */
export async function assertPostgresKnowsTimeZone(db: Executor, name: string): Promise<void> {
  const { rows } = await sql<{ known: boolean }>`
    SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = ${name}) AS known`.execute(db);
  if (rows[0]?.known !== true) throw invalidTimezone(name);
}
