import { sql, type Kysely } from 'kysely';
import { Migrator, type Migration } from 'kysely/migration';
import { migrations as schemaHistory } from '../../db/migrations/index.js';
import type { BaseLogger } from 'pino';
import { isLockTimeout } from './pg-errors.js';
import { createDb } from './postgres.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before (and regardless of) the app's table types
type AnyDb = Kysely<any>;

/**
 * How long one migration waits for the locks its statements need. A migration queued behind a
 * long transaction would hold every later request on that table behind it (Postgres queues lock
 * requests in order), freezing the service's writes for as long as the transaction lasts; giving
 * up instead costs only a failed start, which can be tried again.
 */
export const MIGRATION_LOCK_TIMEOUT_MS = 10_000;

// The key of the session lock a whole run holds, so that processes starting at once take turns
// on the whole batch (Kysely's own lock is taken per step). Any number no other lock uses.
const RUN_LOCK_KEY = 7_340_112_001n;

/** What a run reports as it goes: a migration starting, and the same migration done. */
export type MigrationProgress = (step: { migration: string; index: number; of: number; tookMs?: number }) => void;

export class MigrationLockTimeoutError extends Error {}

export interface MigrateOptions {
  /** The schema's history; the real one unless a test brings its own. */
  migrations?: Record<string, Migration>;
  lockTimeoutMs?: number;
  progress?: MigrationProgress;
}

/** Each migration, run with its lock waits bounded (SET LOCAL: for its own transaction only). */
function withLockTimeout(migrations: Record<string, Migration>, lockTimeoutMs: number): Record<string, Migration> {
  return Object.fromEntries(
    Object.entries(migrations).map(([name, migration]) => [
      name,
      {
        ...migration,
        up: async (db: AnyDb) => {
          await sql`SELECT set_config('lock_timeout', ${`${lockTimeoutMs}ms`}, true)`.execute(db);
          await migration.up(db);
        },
      },
    ]),
  );
}

/**
 * Applies every pending migration, one transaction each, and returns their names. One at a time,
 * so none holds its locks for the whole batch: a migration that rewrites `events` no longer keeps
 * it locked while the ones after it run. Processes starting at once take turns on the whole run
 * (a session advisory lock), so each migration is applied exactly once, by one of them. A
 * migration that fails leaves the ones before it applied.
 */
export async function migrateToLatest(db: AnyDb, options: MigrateOptions = {}): Promise<string[]> {
  const lockTimeoutMs = options.lockTimeoutMs ?? MIGRATION_LOCK_TIMEOUT_MS;
  const migrations = withLockTimeout(options.migrations ?? schemaHistory, lockTimeoutMs);
  return db.connection().execute(async (connection) => {
    await sql`SELECT pg_advisory_lock(${RUN_LOCK_KEY})`.execute(connection);
    try {
      const migrator = new Migrator({ db: connection, provider: { getMigrations: async () => migrations } });
      const pending = (await migrator.getMigrations()).filter((m) => !m.executedAt).map((m) => m.name);
      const applied: string[] = [];
      for (const [index, migration] of pending.entries()) {
        options.progress?.({ migration, index: index + 1, of: pending.length });
        const started = performance.now();
        const { error, results } = await migrator.migrateUp();
        if (error) throw explain(error, migration, lockTimeoutMs);
        const done = results?.find((r) => r.migrationName === migration && r.status === 'Success');
        if (!done) throw new Error(`migration ${migration} was expected next, but ${JSON.stringify(results)} ran`);
        applied.push(migration);
        options.progress?.({ migration, index: index + 1, of: pending.length, tookMs: performance.now() - started });
      }
      return applied;
    } finally {
      await sql`SELECT pg_advisory_unlock(${RUN_LOCK_KEY})`.execute(connection);
    }
  });
}

function explain(error: unknown, migration: string, lockTimeoutMs: number): Error {
  if (isLockTimeout(error))
    return new MigrationLockTimeoutError(
      `migration ${migration} waited ${lockTimeoutMs} ms for a table another transaction is using and gave up; ` +
        'nothing of it was applied. Start again once that transaction has ended (pg_stat_activity shows it)',
    );
  return error instanceof Error ? error : new Error(String(error));
}

/** The migrations the database has not applied yet (all of them on an empty database). */
export async function pendingMigrations(db: AnyDb, migrations = schemaHistory): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  return (await migrator.getMigrations()).filter((m) => !m.executedAt).map((m) => m.name);
}

/** Progress lines for a person watching a start or a deploy: each migration as it starts and ends. */
export function logMigrationProgress(log: Pick<BaseLogger, 'info'>): MigrationProgress {
  return ({ migration, index, of, tookMs }) =>
    tookMs === undefined
      ? log.info({ migration, step: `${index}/${of}` }, 'applying migration')
      : log.info({ migration, step: `${index}/${of}`, tookMs: Math.round(tookMs) }, 'migration applied');
}

export class SchemaBehindError extends Error {}

/**
 * For a process that does not migrate (MIGRATE_ON_START=false): refuses to start on a database
 * whose schema is behind this code, naming what is missing, rather than failing request by request.
 */
export async function assertMigrated(databaseUrl: string): Promise<void> {
  const db = createDb(databaseUrl, 1);
  try {
    const pending = await pendingMigrations(db).catch((err: unknown) => {
      // invalid_catalog_name: only a migrating start creates the database.
      if ((err as { code?: unknown }).code === '3D000') return undefined;
      throw err;
    });
    const missing =
      pending === undefined
        ? 'the database does not exist'
        : pending.length
          ? `the database lacks ${pending.length} migration(s) (${pending.join(', ')})`
          : undefined;
    if (missing)
      throw new SchemaBehindError(
        `${missing} and MIGRATE_ON_START=false: run \`npm run migrate\` (or the migrate service) first`,
      );
  } finally {
    await db.destroy();
  }
}
