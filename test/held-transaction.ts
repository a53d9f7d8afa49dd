import type { Transaction } from 'kysely';
import type { Database } from '../src/infra/database-schema.js';
import type { Db } from '../src/infra/postgres.js';

/**
 * Runs `write` in a transaction and keeps it open until `commit()` is called: rows it wrote hold
 * their ids (taken at insert) but stay invisible until then, the way a slow writer's do.
 */
export async function heldTransaction<T>(
  db: Db,
  write: (trx: Transaction<Database>) => Promise<T>,
): Promise<{ value: T; commit: () => Promise<void> }> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let written!: (value: T) => void;
  let failed!: (err: unknown) => void;
  const ready = new Promise<T>((resolve, reject) => {
    written = resolve;
    failed = reject;
  });
  const done = db
    .transaction()
    .execute(async (trx) => {
      written(await write(trx));
      await gate;
    })
    .catch((err: unknown) => {
      failed(err);
      throw err;
    });
  const value = await ready;
  return {
    value,
    commit: async () => {
      release();
      await done;
    },
  };
}
