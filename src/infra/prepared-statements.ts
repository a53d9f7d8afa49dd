import pg from 'pg';

// The hottest statements (claims/next) run as named prepared statements. Postgres then parses and
// analyzes each of them once per connection instead of on every call, and its plan cache may keep
// a generic plan, so a claim no longer pays for planning a five-CTE statement. Measured on the
// claims/next statement: planning and parsing were about 45% of its Postgres CPU.
//
// A statement is named where it is defined (`compiledQuery(build, { name: 'claim_next' })`), and
// the name travels in its text as a leading comment, `/* prepared claim_next */ WITH ...`: Kysely
// hands pg nothing but text and parameters, so the text is what carries it, and the name shows in
// Postgres's logs and statistics too. The pool's client sends such a text under its name and
// everything else unnamed, so the per-connection cache stays a handful of entries. A new
// connection (after a restart or a terminated backend) prepares again on first use, which pg does
// by itself.

const PREFIX = '/* prepared ';
const SUFFIX = ' */ ';
const NAME = /^[a-z][a-z0-9_]*$/i;

/** The text of a statement that runs prepared under `name`. */
export function namedStatement(name: string, text: string): string {
  if (!NAME.test(name)) throw new Error(`invalid prepared statement name ${JSON.stringify(name)}`);
  return `${PREFIX}${name}${SUFFIX}${text}`;
}

/** The name a statement runs prepared under, read from its text; undefined for unnamed ones. */
export function statementName(text: string): string | undefined {
  if (!text.startsWith(PREFIX)) return undefined;
  const end = text.indexOf(SUFFIX, PREFIX.length);
  return end > PREFIX.length ? text.slice(PREFIX.length, end) : undefined;
}

/**
 * The pool's client class: Kysely hands pg plain text and parameters, and this sends a named
 * statement's text under its name. Anything else (configs, cursors, callbacks) passes through.
 */
export class PreparingClient extends pg.Client {
  // biome-ignore lint/suspicious/noExplicitAny: pg.Client.query has a dozen overloads; this passes them through
  override query(...args: any[]): any {
    const [text, values] = args;
    const name = typeof text === 'string' && args.length <= 2 ? statementName(text) : undefined;
    return name ? super.query({ name, text, values }) : (super.query as (...a: unknown[]) => unknown)(...args);
  }
}
