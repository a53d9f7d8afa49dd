import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { Database } from './database-schema.js';
import type { Db } from './db.js';
import { PreparingClient } from './prepared-statements.js';
import { isDuplicateDatabase } from './pg-errors.js';

// int8 columns (counts, sums, amounts) come back as JS numbers. Every stored amount and point
// total is bounded by validation to stay below 2^53; arithmetic that could exceed it (settlement
// products) is done in SQL numeric or BigInt and never read through this parser.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
// `date` columns are calendar days in a circle's time zone: keep them as 'YYYY-MM-DD' strings
// rather than letting pg turn them into midnight in the server's zone.
pg.types.setTypeParser(pg.types.builtins.DATE, (v) => v);

// Most of the code imports the handle types from here, beside createDb.
export type { Db, Executor } from './db.js';

/**
 * The connection pool every database handle uses (prepared statements, deadlines, and the error
 * listeners without which a dropped connection would crash the process). Exported on its own for
 * the few callers that need Kysely options of their own around it (a query log in a test).
 */
export function createPool(databaseUrl: string, poolSize: number, connectTimeoutMs = 5_000): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: poolSize,
    Client: PreparingClient,
    // Fail fast while Postgres is down or every connection is busy, instead of queueing requests
    // forever. The deadline is a timer in this process: an event loop stalled past it (a starved
    // CPU) fails the wait even if the connection came, so a heavily loaded host may need it longer.
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    // The `date` parser above keeps Postgres's text, which is 'YYYY-MM-DD' only in the ISO style:
    // a database or role set to another DateStyle ('SQL, DMY') would hand the calendar code
    // '06/12/2026'. Every session of ours asks for ISO, whatever the server's default.
    options: '-c DateStyle=ISO',
  });
  // An idle client losing its connection (Postgres restarted, backend terminated) emits 'error' on
  // the pool; without a listener that would crash the process. The pool replaces the client itself.
  // This includes a pool being ended: pool.end() resolves once its clients are told to close, not
  // once their backends are gone, so a backend terminated in between still reports to the pool.
  pool.on('error', () => {});
  // A connection terminated while checked out (pg_terminate_backend, a restart) also emits 'error'
  // on its client; unheard, that would crash the process. The query in flight fails on its own
  // (answered as 503), and the pool discards the broken client.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return pool;
}

export function createDb(databaseUrl: string, poolSize: number, connectTimeoutMs = 5_000): Db {
  return new Kysely<Database>({
    dialect: new PostgresDialect({ pool: createPool(databaseUrl, poolSize, connectTimeoutMs) }),
  });
}

/** Creates the database named in the URL if it does not exist; safe when several processes race. */
export async function createDatabaseIfMissing(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new Error('DATABASE_URL names no database');
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      return true;
    } catch (err) {
      if (isDuplicateDatabase(err)) return false;
      throw err;
    }
  } finally {
    await client.end();
  }
}
