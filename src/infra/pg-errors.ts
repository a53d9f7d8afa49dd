// Postgres reports what failed as a five-character SQLSTATE code; these are the ones the service
// acts on, recognised here and nowhere else.

interface PgError {
  code?: unknown;
  constraint?: unknown;
  message?: unknown;
}

const UNIQUE_VIOLATION = '23505';
const FOREIGN_KEY_VIOLATION = '23503';

/** A constraint name, or a pattern the name must match; omitted, any constraint. */
type ConstraintMatch = string | RegExp | undefined;

function violates(err: unknown, code: string, constraint: ConstraintMatch): boolean {
  const e = err as PgError | null | undefined;
  if (e?.code !== code) return false;
  if (constraint === undefined) return true;
  const name = typeof e.constraint === 'string' ? e.constraint : '';
  return typeof constraint === 'string' ? name === constraint : constraint.test(name);
}

export const isUniqueViolation = (err: unknown, constraint?: string | RegExp) =>
  violates(err, UNIQUE_VIOLATION, constraint);

export const isForeignKeyViolation = (err: unknown, constraint?: string | RegExp) =>
  violates(err, FOREIGN_KEY_VIOLATION, constraint);

/** CREATE DATABASE of a database that exists (42P04), or lost a race on pg_database's unique index. */
export const isDuplicateDatabase = (err: unknown) =>
  (err as PgError | null | undefined)?.code === '42P04' || isUniqueViolation(err);

// Two transactions that cannot both go on: Postgres rolled one back (deadlock_detected,
// serialization_failure). Nothing it did remains, so the same request can simply be sent again.
const WRITE_CONFLICT = new Set(['40P01', '40001']);

export const isWriteConflict = (err: unknown) =>
  WRITE_CONFLICT.has((err as PgError | null | undefined)?.code as string);

/** A statement that gave up waiting for a lock after `lock_timeout` (lock_not_available). */
export const isLockTimeout = (err: unknown) => (err as PgError | null | undefined)?.code === '55P03';

// Postgres and network failures that mean "the database is unreachable right now", not a bug:
// admin/crash shutdown, cannot connect now, connection exceptions, too many connections.
const UNAVAILABLE_PG = new Set(['57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004', '53300']);
const UNAVAILABLE_NET = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND']);
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection is closed|Stream isn't writeable/;

/** A failure of the database (or Redis) connection rather than of the statement: worth a retry later. */
export function isBackendUnavailable(err: unknown): boolean {
  const e = err as PgError | null | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (UNAVAILABLE_PG.has(code) || UNAVAILABLE_NET.has(code)) return true;
  return UNAVAILABLE_MESSAGE.test(typeof e?.message === 'string' ? e.message : '');
}
