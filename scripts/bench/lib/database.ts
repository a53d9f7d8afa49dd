import pg from 'pg';
import {
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type QueryResult,
} from 'kysely';
import type { Database } from '../../../src/infra/database-schema.js';
import { createDb } from '../../../src/infra/postgres.js';
import { migrateToLatest } from '../../../src/infra/migrations.js';
import { statementName } from '../../../src/infra/prepared-statements.js';

// The bench's own database: dropped and created fresh at start, dropped at the end.

export const PG_BASE = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432';

export const databaseUrl = (name: string) => `${PG_BASE}/${name}`;

async function withAdmin<T>(run: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl('postgres') });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

export async function dropDatabase(name: string): Promise<void> {
  await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`));
}

export async function createFreshDatabase(name: string): Promise<void> {
  await dropDatabase(name);
  await withAdmin((c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  const db = createDb(databaseUrl(name), 1);
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}

export async function serverVersions(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  return rows[0]!.v;
}

export interface Captured {
  text: string;
  values: unknown[];
  /** Set when the service runs this statement as a named prepared statement. */
  name?: string;
}

/**
 * A Kysely instance that runs nothing: every query the repository functions build is recorded,
 * compiled exactly as the service compiles it, and answered with no rows. The SQL limits replay
 * these statements straight through pg, so they are the service's own SQL, not a copy, sent the
 * same way (named prepared statements where the service prepares them).
 */
export function captureDb(): { db: Kysely<Database>; queries: Captured[] } {
  const queries: Captured[] = [];
  const connection: DatabaseConnection = {
    async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
      queries.push({ text: q.sql, values: [...q.parameters], name: statementName(q.sql) });
      return { rows: [] };
    },
    streamQuery() {
      throw new Error('not supported');
    },
  };
  const driver: Driver = {
    async init() {},
    async acquireConnection() {
      return connection;
    },
    async beginTransaction() {},
    async commitTransaction() {},
    async rollbackTransaction() {},
    async releaseConnection() {},
    async destroy() {},
  };
  const db = new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => driver,
      createIntrospector: (k) => new PostgresIntrospector(k),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  });
  return { db, queries };
}
