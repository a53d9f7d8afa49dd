import { createHash } from 'node:crypto';
import pg from 'pg';
import type { CompiledQuery, QueryResult } from 'kysely';
import type { Executor } from './db.js';

// The hottest statements (claims/next) run as named prepared statements. Postgres then parses and
// analyzes each of them once per connection instead of on every call, and its plan cache may keep
// a generic plan, so a claim no longer pays for planning a five-CTE statement. Measured on the
// claims/next statement: planning and parsing were about 45% of its Postgres CPU.
//
// Only statements passed to executePrepared are named, so the per-connection cache stays a handful
// of entries; everything else runs unnamed, as before. Names come from the text, so a statement
// built in two shapes (with or without SKIP LOCKED) gets two names, and a new connection (after a
// restart or a terminated backend) prepares again on first use, which pg does by itself.

const names = new Map<string, string>();

/** The name a statement runs under, if it is one of the prepared ones. */
export const preparedName = (text: string): string | undefined => names.get(text);

/** Runs a compiled statement as a named prepared statement. */
export async function executePrepared<R>(db: Executor, compiled: CompiledQuery<R>): Promise<QueryResult<R>> {
  if (!names.has(compiled.sql))
    names.set(compiled.sql, `ca_${createHash('sha256').update(compiled.sql).digest('hex').slice(0, 24)}`);
  return db.executeQuery<R>(compiled);
}

/**
 * The pool's client class: Kysely hands pg plain text and parameters, and this sends the ones
 * registered above under their name. Anything else (configs, cursors, callbacks) passes through.
 */
export class PreparingClient extends pg.Client {
  // biome-ignore lint/suspicious/noExplicitAny: pg.Client.query has a dozen overloads; this passes them through
  override query(...args: any[]): any {
    const [text, values] = args;
    const name = typeof text === 'string' && args.length <= 2 ? names.get(text) : undefined;
    return name ? super.query({ name, text, values }) : (super.query as (...a: unknown[]) => unknown)(...args);
  }
}
