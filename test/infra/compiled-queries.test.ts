import t from 'tap';
import { sql } from 'kysely';
import { compiledQuery, compiledQueryShapes } from '../../src/infra/compiled-queries.js';
import { createTestEnv } from '../helper.js';

// Hot reads are compiled once and bound per call: each call must get its own arguments, in the
// places they were written, with constants left alone, and the same rows as building it afresh.

t.test("a compiled query binds each call's arguments where they were written", async (t) => {
  const { db } = await createTestEnv(t);
  await sql`INSERT INTO users (handle, password_hash, display_name) VALUES ('ann_x', 'h', 'Ann'), ('bob_x', 'h', 'Bob'), ('cid_x', 'h', 'Cid')`.execute(
    db,
  );

  let builds = 0;
  const byName = compiledQuery((db, a: { name: string; suffix: string }) => {
    builds++;
    return db
      .selectFrom('users')
      .select(['display_name', 'handle'])
      .where('handle', 'like', sql<string>`${'%_'}||${a.suffix}`)
      .where('display_name', '=', a.name)
      .where('skills', '=', sql<string[]>`'{}'`);
  });

  const ann = await byName.execute(db, { name: 'Ann', suffix: 'x' });
  const bob = await byName.execute(db, { name: 'Bob', suffix: 'x' });
  const nobody = await byName.execute(db, { name: 'Ann', suffix: 'y' });
  t.same(ann.rows, [{ display_name: 'Ann', handle: 'ann_x' }]);
  t.same(bob.rows, [{ display_name: 'Bob', handle: 'bob_x' }]);
  t.same(nobody.rows, []);
  t.equal(builds, 1, 'built and compiled once, whatever the arguments');

  const bound = byName.bind(db, { name: 'Cid', suffix: 'x' });
  t.same(bound.parameters, ['%_', 'x', 'Cid'], 'constants stay, arguments take their places in order');
  const fresh = db
    .selectFrom('users')
    .select(['display_name', 'handle'])
    .where('handle', 'like', sql<string>`${'%_'}||${'x'}`)
    .where('display_name', '=', 'Cid')
    .where('skills', '=', sql<string[]>`'{}'`)
    .compile();
  t.equal(bound.sql, fresh.sql, 'the same SQL as building the query afresh');
  t.same(bound.parameters, fresh.parameters);

  // Inside a transaction, on the transaction's connection.
  await db.transaction().execute(async (trx) => {
    await sql`UPDATE users SET display_name = 'Ann B' WHERE handle = 'ann_x'`.execute(trx);
    t.same((await byName.execute(trx, { name: 'Ann B', suffix: 'x' })).rows, [
      { display_name: 'Ann B', handle: 'ann_x' },
    ]);
  });
});

t.test('a query with optional clauses is compiled once per shape', async (t) => {
  const { db } = await createTestEnv(t);
  await sql`INSERT INTO users (handle, password_hash, display_name) VALUES ('ann_x', 'h', 'Ann'), ('bob_x', 'h', 'Bob')`.execute(
    db,
  );

  let builds = 0;
  const users = compiledQueryShapes(
    (db, a: { name?: string; limit: number }, shape: { byName: boolean; newestFirst: boolean }) => {
      builds++;
      let q = db.selectFrom('users').select('display_name');
      if (shape.byName) q = q.where('display_name', '=', a.name!);
      return q.orderBy('handle', shape.newestFirst ? 'desc' : 'asc').limit(a.limit);
    },
  );

  const names = async (shape: { byName: boolean; newestFirst: boolean }, args: { name?: string; limit: number }) =>
    (await users(shape).execute(db, args)).rows.map((r) => r.display_name);
  t.same(await names({ byName: false, newestFirst: false }, { limit: 10 }), ['Ann', 'Bob']);
  t.same(await names({ byName: false, newestFirst: true }, { limit: 1 }), ['Bob']);
  t.same(await names({ byName: true, newestFirst: false }, { name: 'Bob', limit: 10 }), ['Bob']);
  t.same(await names({ byName: true, newestFirst: false }, { name: 'Ann', limit: 10 }), ['Ann']);
  t.same(
    await names({ newestFirst: false, byName: true } as { byName: boolean; newestFirst: boolean }, {
      name: 'Ann',
      limit: 10,
    }),
    ['Ann'],
    'the order flags are given in does not matter',
  );
  t.equal(builds, 3, 'three shapes, three compilations');
  t.equal(
    users({ byName: true, newestFirst: false }),
    users({ newestFirst: false, byName: true } as { byName: boolean; newestFirst: boolean }),
  );
});
