import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { LATEST_SCHEMA_VERSION } from 'bullmq';

// Test databases live on the server named by TEST_DATABASE_URL (default: local Postgres).
// `before.ts` builds one migrated template; every test file clones it into a database of its own.
export const SERVER_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * The template is named after a hash of the migrations and of BullMQ's schema version (its tables
 * are in the template too, for the tests on the postgres queue backend), so a changed schema gets
 * a new template and concurrent test runs on one machine share a finished one instead of
 * rebuilding it under each other's feet.
 */
export const TEMPLATE_DB = (() => {
  const dir = fileURLToPath(new URL('../../db/migrations/', import.meta.url));
  const hash = createHash('sha256');
  for (const file of readdirSync(dir).sort()) hash.update(file).update(readFileSync(dir + file));
  hash.update(`bullmq schema ${LATEST_SCHEMA_VERSION}`);
  return `ca_template_${hash.digest('hex').slice(0, 16)}`;
})();

/**
 * How long a test's connection may wait for Postgres. The pool's deadline is a timer in the test
 * process, and test files share two cores with each other (and with a benchmark during a soak): an
 * event loop stalled past the service's default 5 s would fail a wait whose connection had come.
 * Every handle a test opens uses it, the app's and the test's own; tests of the deadline set theirs.
 */
export const TEST_CONNECT_TIMEOUT_MS = 30_000;

export function databaseUrl(name: string): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function withAdminClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: SERVER_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
