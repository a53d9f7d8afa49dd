import { channel } from 'node:diagnostics_channel';

// Walks a table in keyset pages (one query per page, ordered by a unique key, each page starting
// after the last key served) for exports too large to hold in memory. No transaction spans the
// walk: a slow reader must not hold a pooled connection for minutes. What the walk serves is fixed
// by the caller's page query, which pins the snapshot the export began in (snapshots.ts): a key
// range alone would not do, as a writer can commit a lower key after a higher one was served.

/** Rows per query of an export: large enough to be cheap per row, small enough to hold. */
export const EXPORT_PAGE_SIZE = 1000;

/** Published once per page read: `{walk, page, rows}`. Observability and tests watch it. */
export const keysetPageChannel = channel('circle-actions:keyset-page');

export interface KeysetPageMessage {
  /** What is being walked, e.g. `project-contributions`. */
  walk: string;
  /** 1-based number of the page just read. */
  page: number;
  rows: number;
}

/**
 * Yields the rows page by page until a page comes back short. `fetchPage(after, limit)` must
 * return at most `limit` rows in key order, all after `after` (null: from the start).
 */
export async function* walkKeyset<Row, Key>(
  walk: string,
  pageSize: number,
  fetchPage: (after: Key | null, limit: number) => Promise<Row[]>,
  keyOf: (row: Row) => Key,
): AsyncGenerator<Row[]> {
  let after: Key | null = null;
  for (let page = 1; ; page++) {
    const rows = await fetchPage(after, pageSize);
    if (keysetPageChannel.hasSubscribers)
      keysetPageChannel.publish({ walk, page, rows: rows.length } satisfies KeysetPageMessage);
    if (rows.length > 0) {
      yield rows;
      after = keyOf(rows[rows.length - 1] as Row);
    }
    if (rows.length < pageSize) return;
  }
}
