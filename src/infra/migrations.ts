import { Migrator } from 'kysely/migration';
import type { Kysely } from 'kysely';
import { migrations } from '../../db/migrations/index.js';

/**
 * Applies every pending migration. Kysely takes a Postgres advisory lock for the run, so several
 * processes starting at once apply each migration exactly once.
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations run before (and regardless of) the app's table types
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
