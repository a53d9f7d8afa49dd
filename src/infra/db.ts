import type { Kysely, Transaction } from 'kysely';
import type { Database } from './database-schema.js';

// The handles queries run on, in a file of their own: the pool's setup (postgres.ts) and the
// statement helpers it uses both need them.

export type Db = Kysely<Database>;
/** Either the pool or an open transaction: for reads that work in both. */
export type Executor = Db | Transaction<Database>;
