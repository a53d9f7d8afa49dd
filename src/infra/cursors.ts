import { invalid } from '../errors.js';
import { isUuid } from './uuid.js';

// Keyset pagination: the cursor is the sort key of the last row served, base64url-encoded so
// clients treat it as opaque. Stable under inserts, and an index range scan however deep the page.

export type CursorKey = (string | number)[];

export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/**
 * What one position of a cursor key must hold: a safe integer (for bigint columns and
 * microseconds), an integer within Postgres's `integer` (for keys the SQL compares with an int
 * column or casts to `::int`), a string Postgres can store (no NUL), or a UUID.
 */
export type CursorPart = 'number' | 'int32' | 'string' | 'uuid';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

const isText = (value: unknown): value is string => typeof value === 'string' && !value.includes('\u0000');

function fits(value: unknown, part: CursorPart | undefined): boolean {
  if (part === 'number') return Number.isSafeInteger(value);
  if (part === 'int32')
    return Number.isInteger(value) && (value as number) >= INT32_MIN && (value as number) <= INT32_MAX;
  if (part === 'uuid') return isUuid(value);
  if (part === 'string') return isText(value);
  return isText(value) || (typeof value === 'number' && Number.isFinite(value));
}

/**
 * Decodes a cursor into its key. `shape` is either the key's length or, better, the kind of each
 * position: a cursor is client input, and a forged one whose values reach SQL with the wrong type
 * would otherwise fail there as a 500 instead of a 400.
 */
export function decodeCursor(cursor: string | undefined, shape: number | readonly CursorPart[]): CursorKey | null {
  if (cursor === undefined) return null;
  const parts = typeof shape === 'number' ? Array.from({ length: shape }, () => undefined) : shape;
  try {
    const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(key) && key.length === parts.length && key.every((k, i) => fits(k, parts[i]))) {
      return key as CursorKey;
    }
  } catch {
    // fall through to the error below
  }
  throw invalid('invalid_cursor', 'The cursor is not one this API issued.');
}

/** Given limit+1 rows, returns the page and the cursor of its last row when more remain. */
export function pageOf<T>(
  rows: T[],
  limit: number,
  keyOf: (row: T) => CursorKey,
): { items: T[]; nextCursor: string | null } {
  const hasMore = rows.length > limit;
  const items = hasMore ? rows.slice(0, limit) : rows;
  const last = items[items.length - 1];
  return { items, nextCursor: hasMore && last ? encodeCursor(keyOf(last)) : null };
}
