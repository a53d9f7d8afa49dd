import t from 'tap';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type { Database } from '../../src/infra/database-schema.js';
import { createDb, createPool } from '../../src/infra/postgres.js';
import { statementName } from '../../src/infra/prepared-statements.js';
import { compiledQuery } from '../../src/infra/compiled-queries.js';
import { claimNextTask } from '../../src/claims/claims.repository.js';
import { claimLimits } from '../../src/claims/claims.service.js';
import { buildTestApp, createCircle, registerUser } from '../helper.js';
import { createProject, addTasks, joinMembers } from '../marketplace-helpers.js';

// claims/next runs as a named prepared statement, under the name its definition gives it;
// everything else stays unnamed. Checked on one connection (a pool of one), since prepared
// statements belong to a Postgres session.

t.test('the claim statement is prepared once per connection and prepared again on a new one', async (t) => {
  const { app, config } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const members = await joinMembers(app, circle.id, 3);
  const project = await createProject(app, owner, circle.id);
  await addTasks(app, owner, project.id, [
    { title: 'a', weight: 1 },
    { title: 'b', weight: 1 },
    { title: 'c', weight: 1 },
    { title: 'd', weight: 1 },
  ]);

  const limits = claimLimits(config);
  const db = createDb(config.databaseUrl, 1, config.databaseConnectTimeoutMs);
  t.teardown(() => db.destroy());
  const prepared = async () =>
    (await sql<{ name: string; statement: string }>`SELECT name, statement FROM pg_prepared_statements`.execute(db))
      .rows;
  const backend = async () => (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db)).rows[0]!.pid;

  const first = await claimNextTask(db, project.id, members[0]!.id, null, limits);
  const second = await claimNextTask(db, project.id, members[1]!.id, ['design'], limits);
  t.ok(first && second, 'both claims made');
  t.not(first!.task_id, second!.task_id);
  const statements = await prepared();
  t.equal(statements.length, 1, 'one statement for both calls: the skills are a parameter, not part of the text');
  t.equal(statements[0]!.name, 'claim_next_skipLocked', 'the name given where the statement is defined, and its shape');
  t.match(statements[0]!.statement, /FOR UPDATE OF t\s+SKIP LOCKED/);

  // The waiting variant (no SKIP LOCKED) is another shape, so a second name.
  await claimNextTask(db, project.id, members[2]!.id, null, limits, { skipLocked: false });
  t.same((await prepared()).map((s) => s.name).sort(), ['claim_next', 'claim_next_skipLocked']);
  t.notMatch(
    (await prepared()).find((s) => s.name === 'claim_next')!.statement,
    /SKIP LOCKED/,
    'each name stands for its own text',
  );

  // A terminated backend: the pool replaces the connection and pg prepares the statement again.
  const old = await backend();
  const admin = createDb(config.databaseUrl, 1, config.databaseConnectTimeoutMs);
  t.teardown(() => admin.destroy());
  await sql`SELECT pg_terminate_backend(${old}::int)`.execute(admin);
  // Queries fail until pg has seen the connection end and the pool has dropped it.
  for (let attempt = 0; ; attempt++) {
    try {
      await sql`SELECT 1`.execute(db);
      break;
    } catch (err) {
      if (attempt >= 20) throw err;
    }
  }
  const again = await claimNextTask(db, project.id, members[0]!.id, null, limits);
  t.ok(again, 'claims again on the new connection');
  t.not(await backend(), old);
  t.equal((await prepared()).length, 1);
});

t.test(
  "claims/next keeps walking the claimable index in order under a generic plan, whatever the skills' statistics say",
  async (t) => {
    const { app, config } = await buildTestApp(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [member] = await joinMembers(app, circle.id, 1);
    const project = await createProject(app, owner, circle.id);
    // Skills spread evenly over many tasks: the array statistics make any one skill look rare, which
    // once led the generic plan to read and sort every claimable task on each claim.
    const skills = ['coding', 'design', 'writing', 'review', 'testing', 'outreach', 'research', 'translation'];
    await addTasks(
      app,
      owner,
      project.id,
      Array.from({ length: 4000 }, (_, i) => ({ title: `t${i}`, skills: [skills[i % skills.length]!] })),
    );

    let last: { sql: string; parameters: readonly unknown[] } | null = null;
    const db = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: createPool(config.databaseUrl, 1, config.databaseConnectTimeoutMs) }),
      log: (e) => {
        if (e.level === 'query') last = e.query;
      },
    });
    t.teardown(() => db.destroy());
    await sql`ANALYZE tasks, claims`.execute(db);
    t.ok(
      await claimNextTask(db, project.id, member!.id, ['design'], claimLimits(config)),
      'a claim, which prepares the statement',
    );
    const statement = last!;
    const name = statementName(statement.sql)!;
    t.equal(name, 'claim_next_skipLocked');

    const literal = (v: unknown): string =>
      v === null
        ? 'NULL'
        : typeof v === 'number'
          ? String(v)
          : Array.isArray(v)
            ? `'{${v.join(',')}}'`
            : `'${String(v).replaceAll("'", "''")}'`;
    type PlanNode = { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; Plans?: PlanNode[] };
    const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)];
    await sql`SET plan_cache_mode = force_generic_plan`.execute(db);
    for (const wanted of [['design'], null, ['no-such-skill']]) {
      const args = statement.parameters.map((p) => (Array.isArray(p) ? wanted : p));
      const { rows } = await sql<{
        'QUERY PLAN': [{ Plan: PlanNode }];
      }>`EXPLAIN (FORMAT JSON) EXECUTE ${sql.id(name)}(${sql.raw(args.map(literal).join(', '))})`.execute(db);
      const onTasks = nodes(rows[0]!['QUERY PLAN'][0].Plan).filter((n) => n['Relation Name'] === 'tasks');
      t.ok(
        onTasks.some((n) => n['Node Type'] === 'Index Scan' && n['Index Name'] === 'tasks_claimable_idx'),
        `skills ${JSON.stringify(wanted)}: an ordered walk of the claimable index`,
      );
      t.notOk(
        onTasks.some((n) => n['Node Type'].startsWith('Bitmap') || n['Node Type'] === 'Seq Scan'),
        'not a read of every claimable task',
      );
    }
  },
);

t.test('only statements defined with a name run prepared; the rest run unnamed', async (t) => {
  const { config } = await buildTestApp(t);
  const db = createDb(config.databaseUrl, 1, config.databaseConnectTimeoutMs);
  t.teardown(() => db.destroy());
  const named = compiledQuery((_db, a: { n: number }) => sql<{ n: number }>`SELECT ${a.n}::int AS n`, {
    name: 'test_named',
  });
  const unnamed = compiledQuery((_db, a: { n: number }) => sql<{ n: number }>`SELECT ${a.n}::int + 1 AS n`);
  t.same((await named.execute(db, { n: 1 })).rows, [{ n: 1 }]);
  t.same((await named.execute(db, { n: 2 })).rows, [{ n: 2 }], 'the prepared statement takes new arguments');
  t.same((await unnamed.execute(db, { n: 1 })).rows, [{ n: 2 }]);
  const { rows } = await sql<{ name: string }>`SELECT name FROM pg_prepared_statements`.execute(db);
  t.same(
    rows.map((r) => r.name),
    ['test_named'],
  );
  t.equal(statementName(unnamed.bind(db, { n: 1 }).sql), undefined);
  t.throws(
    () => compiledQuery((_db, a: { n: number }) => sql`SELECT ${a.n}`, { name: 'bad name */ DROP' }).bind(db, { n: 1 }),
    /invalid prepared statement name/,
  );
});
