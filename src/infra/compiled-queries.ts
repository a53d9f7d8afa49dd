import type { Compilable, CompiledQuery, QueryResult, RawBuilder } from 'kysely';
import type { Db, Executor } from './db.js';
import { namedStatement } from './prepared-statements.js';

// Kysely builds an immutable operation tree and compiles it to SQL on every call: for a simple
// read that was about a tenth of the API's CPU per request (perf on the task_read benchmark), for
// SQL text that never changes. A compiled query is built and compiled once per process, with a
// placeholder where each argument goes, and each call only binds its arguments in order.
//
// Arguments must reach the query as single values (`where(col, '=', arg)`, `${arg}` in `sql`),
// never as something Kysely expands or inspects while building: an array given to `in`, a value
// that picks a branch. A query whose shape depends on its input is one compiled query per shape.

class Placeholder {
  constructor(readonly name: string) {}
}

/** Stands in for the arguments while the query is built: each property is its own placeholder. */
function placeholders<A extends object>(): A {
  return new Proxy({}, { get: (_target, name) => new Placeholder(String(name)) }) as A;
}

export interface CompiledStatement<A extends object, R> {
  /** Runs the statement with these arguments on the pool or inside a transaction. */
  execute(db: Executor, args: A): Promise<QueryResult<R>>;
  /** The statement with these arguments, as execute runs it. */
  bind(db: Executor, args: A): CompiledQuery<R>;
}

export interface CompiledQueryOptions {
  /**
   * Runs the statement as a named prepared statement under this name, on every connection (see
   * prepared-statements.ts): for the few hot statements whose planning is a large part of their cost.
   */
  name?: string;
}

/** A query builder, or a statement written with Kysely's `sql` (compiled against an executor). */
type Buildable<R> = Compilable<R> | RawBuilder<R>;

/**
 * A query built once with `build` (called with the pool or transaction of the first call, and
 * placeholder arguments) and bound to real arguments on every call.
 */
export function compiledQuery<A extends object, R>(
  build: (db: Db, args: A) => Buildable<R>,
  options: CompiledQueryOptions = {},
): CompiledStatement<A, R> {
  let template: CompiledQuery<R> | undefined;
  const compile = (db: Executor): CompiledQuery<R> => {
    // A builder's compile() takes no argument; a RawBuilder's needs the executor for its dialect.
    const compiled = (build(db as Db, placeholders<A>()) as { compile(db: Executor): CompiledQuery<R> }).compile(db);
    return options.name ? { ...compiled, sql: namedStatement(options.name, compiled.sql) } : compiled;
  };
  const bind = (db: Executor, args: A): CompiledQuery<R> => {
    template ??= compile(db);
    const parameters = template.parameters.map((p) => (p instanceof Placeholder ? args[p.name as keyof A] : p));
    // Every call shares the template's query tree and query id: Kysely plugins key their state by
    // query id, and the service uses none.
    return { ...template, parameters };
  };
  return { bind, execute: (db, args) => db.executeQuery(bind(db, args)) };
}

/**
 * One compiled query per shape, for a query whose clauses depend on which filters are given. A
 * shape is a set of flags, so there are at most 2^flags compiled statements, however many calls.
 * A named one runs each shape prepared under the name followed by the shape's flags that are set
 * (`claim_next_skipLocked`).
 */
export function compiledQueryShapes<S extends Record<string, boolean>, A extends object, R>(
  build: (db: Db, args: A, shape: S) => Buildable<R>,
  options: CompiledQueryOptions = {},
): (shape: S) => CompiledStatement<A, R> {
  const shapes = new Map<string, CompiledStatement<A, R>>();
  return (shape) => {
    const flags = Object.keys(shape)
      .sort()
      .filter((flag) => shape[flag]);
    const key = flags.join(',');
    let statement = shapes.get(key);
    if (!statement) {
      const name = options.name === undefined ? undefined : [options.name, ...flags].join('_');
      statement = compiledQuery((db, args: A) => build(db, args, shape), { name });
      shapes.set(key, statement);
    }
    return statement;
  };
}
