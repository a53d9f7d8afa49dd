import type { BaseLogger } from 'pino';
import type { Config } from './config.js';
import type { Db } from './infra/postgres.js';
import type { Queues } from './jobs/queues.js';

/** The logging business code does: Fastify's request-independent logger and a plain pino logger both fit. */
export type Logger = Pick<BaseLogger, 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'>;

/**
 * What services and job processors work with: the database, the settings, the queue producers and
 * a logger. The API's Fastify instance has exactly these properties, so a route passes its `app`;
 * the worker builds one of its own. Business code never sees Fastify.
 */
export interface AppContext {
  db: Db;
  config: Config;
  queues: Queues;
  log: Logger;
}
