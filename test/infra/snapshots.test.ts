import { sql } from 'kysely';
import fc from 'fast-check';
import t from 'tap';
import type { Db } from '../../src/infra/postgres.js';
import { currentSnapshot, parseSnapshot } from '../../src/infra/snapshots.js';
import { createTestEnv } from '../helper.js';

// parseSnapshot guards what a client's cursor can make Postgres read as a pg_snapshot: every text
// it accepts must be one Postgres accepts too (else a forged cursor is a 500, not a 400), and it
// must not refuse the snapshots Postgres hands out. Checked against the server itself, on texts
// built around the edges of Postgres's rules: invalid transaction ids (0 and every multiple of
// 2^32), bounds out of order, in-progress ids outside [xmin, xmax) or out of order, huge numbers.

const EPOCH = 2n ** 32n;

const accepts = (text: string) => {
  try {
    parseSnapshot(text);
    return true;
  } catch {
    return false;
  }
};

/** Whether Postgres takes `text` as a snapshot and can test visibility in it. */
async function postgresAccepts(db: Db, text: string): Promise<{ ok: boolean; error?: string }> {
  try {
    await sql`SELECT ${text}::pg_snapshot::text AS s, pg_visible_in_snapshot('5'::xid8, ${text}::pg_snapshot) AS v`.execute(
      db,
    );
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** Transaction ids around every edge Postgres draws, and anywhere else. */
const xid = fc.oneof(
  fc.constantFrom(0n, 1n, 2n, 3n, EPOCH - 1n, EPOCH, EPOCH + 1n, 2n * EPOCH, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: 100n }),
  fc
    .tuple(fc.bigInt({ min: 0n, max: 2n ** 31n }), fc.bigInt({ min: -2n, max: 2n }))
    .map(([epoch, offset]) => (epoch * EPOCH + offset < 0n ? 0n : epoch * EPOCH + offset)),
  fc.bigInt({ min: 0n, max: 2n ** 64n + 10n }),
);

/**
 * A snapshot built from numbers: xmax mostly at or just above xmin (sometimes below it, sometimes
 * anywhere), in-progress ids mostly within [xmin, xmax) and sometimes around it, mostly sorted and
 * distinct.
 */
const built = xid.chain((xmin) =>
  fc
    .oneof(
      { arbitrary: fc.bigInt({ min: 0n, max: 20n }).map((d) => xmin + d), weight: 5 },
      { arbitrary: fc.bigInt({ min: -2n, max: -1n }).map((d) => xmin + d), weight: 1 },
      { arbitrary: xid, weight: 1 },
    )
    .chain((xmax) => {
      const inside = xmax > xmin && xmax - xmin <= 1000n ? fc.bigInt({ min: xmin, max: xmax - 1n }) : fc.constant(xmin);
      const around = fc.bigInt({ min: -2n, max: 22n }).map((d) => xmin + d);
      return fc.record({
        xmin: fc.constant(xmin),
        xmax: fc.constant(xmax),
        xip: fc.array(fc.oneof({ arbitrary: inside, weight: 4 }, { arbitrary: around, weight: 1 }), { maxLength: 5 }),
        tidy: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
      });
    }),
);

/** The text of a built snapshot; tidy ones have their in-progress ids sorted and distinct. */
const textOf = (s: { xmin: bigint; xmax: bigint; xip: bigint[]; tidy: boolean }) => {
  const xip = s.tidy ? [...new Set(s.xip)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) : s.xip;
  return `${s.xmin}:${s.xmax}:${xip.join(',')}`;
};

/** Free text over the snapshot's alphabet: empty parts, stray separators, signs, long digit runs. */
const loose = fc.string({ unit: fc.constantFrom(...'0123456789::,,-+ '), maxLength: 40 });

t.test('every snapshot text parseSnapshot accepts, Postgres accepts too', async (t) => {
  const { db } = await createTestEnv(t);
  let accepted = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.oneof({ arbitrary: built.map(textOf), weight: 4 }, { arbitrary: loose, weight: 1 }),
      async (text) => {
        if (!accepts(text)) {
          refused++;
          return true;
        }
        accepted++;
        const pg = await postgresAccepts(db, text);
        if (!pg.ok)
          throw new Error(`parseSnapshot accepted ${JSON.stringify(text)}, which Postgres refuses: ${pg.error}`);
        return true;
      },
    ),
    { numRuns: 3000 },
  );
  t.ok(accepted >= 500, `${accepted} texts accepted and checked against Postgres`);
  t.ok(refused >= 300, `${refused} refused`);
});

t.test('the snapshots Postgres hands out are accepted, in-progress transactions and all', async (t) => {
  const { db } = await createTestEnv(t);
  await fc.assert(
    fc.asyncProperty(built, async (s) => {
      const text = textOf(s);
      const inRange = s.xmin >= 0n && s.xmax >= 0n && s.xmax < 2n ** 63n;
      const xip = text.split(':')[2]!.split(',').filter(Boolean);
      const distinct = new Set(xip).size === xip.length;
      // parseSnapshot is stricter than Postgres only on bounds from 2^63 (xid8 is signed) and on
      // repeated in-progress ids (Postgres drops repeats; it never writes them).
      if (!inRange || !distinct) return true;
      const pg = await postgresAccepts(db, text);
      if (pg.ok && !accepts(text)) throw new Error(`Postgres accepts ${text}, parseSnapshot refuses it`);
      return true;
    }),
    { numRuns: 1000 },
  );

  // Real ones: with transactions in progress, xip is not empty.
  const texts: string[] = [await currentSnapshot(db)];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  // Two transactions that took an id and stay open until the snapshots are read.
  let started = 0;
  const holders = [1, 2].map(() =>
    db.transaction().execute(async (trx) => {
      await sql`SELECT pg_current_xact_id()`.execute(trx);
      started++;
      await gate;
    }),
  );
  while (started < 2) await new Promise((resolve) => setTimeout(resolve, 10));
  // A snapshot lists the ids in progress below its xmax, the first id not completed yet: one more
  // transaction completing puts the two held ones below it.
  await sql`SELECT pg_current_xact_id()`.execute(db);
  for (let i = 0; i < 3; i++) texts.push(await currentSnapshot(db));
  release();
  await Promise.all(holders);
  t.ok(
    texts.some((text) => !text.endsWith(':')),
    `some snapshots had transactions in progress: ${texts.join(' ')}`,
  );
  for (const text of texts) t.equal(parseSnapshot(text), text, `${text} is accepted as it is`);
});

t.test('malformed or invalid snapshot texts are invalid_cursor before any SQL sees them', async (t) => {
  for (const text of [
    '0:0:',
    '0:1:',
    '1:0:',
    '4294967296:4294967297:',
    '1:4294967296:',
    '8589934592:8589934593:',
    '9223372036854775808:9223372036854775809:',
    '3:2:',
    '1:5:0',
    '1:5:5',
    '1:5:3,2',
    '1:5:2,2',
    '1:5:2,',
    ' 1:2:',
    '+1:2:',
    '',
  ]) {
    t.throws(() => parseSnapshot(text), { code: 'invalid_cursor' }, JSON.stringify(text));
  }
  for (const text of ['1:1:', '1:5:1,3', '4294967297:4294967297:', '9223372036854775807:9223372036854775807:']) {
    t.equal(parseSnapshot(text), text);
  }
});
