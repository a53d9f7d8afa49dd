import fc from 'fast-check';
import type { Test } from 'tap';
import { sampleOf } from './schema-sample.js';
import {
  buildWorld,
  defaultParams,
  routeTable,
  snapshot,
  changedTables,
  type JsonSchema,
  type RouteInfo,
  type World,
} from './world.js';

// Every route fuzzed from its own OpenAPI schema with fast-check: bodies that are almost valid
// (one field hostile), entirely wrong, or not even UTF-8; query strings and path parameters of
// every wrong shape. Sent with a valid owner token. The service must never answer 5xx, must answer
// problem+json for every 4xx, and a refused request must leave every table as it was: no retry,
// no excuse. Nothing else writes meanwhile: the fixture runs the API alone, no worker and no sweep.
//
// The routes are shared between three test files (fuzz-1, fuzz-2, fuzz-3: every third route each),
// so each file stays well inside the runner's per-file time limit on a loaded machine and they run
// side by side. A route's inputs depend on its place in the whole table, not on the file.
//
// The effort is a number of inputs, not a time: every route gets FUZZ_RUNS inputs (a route without
// a body half as many, and never fewer than MIN_RUNS), generated from the seed, so a seed replays
// the same inputs on any machine. FUZZ_SEED=<n> replays a run; FUZZ_RUNS=<n> soaks longer.

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const MIN_RUNS = 25;
/** Where a path parameter has no fixture: an id that exists nowhere, the same in every run. */
const NOWHERE = '00000000-0000-4000-8000-00000000dead';

/**
 * Percent-encodes any string, lone surrogates included (as the bytes WTF-8 would give them, which
 * are invalid UTF-8): what a hostile client can put in a URL, where encodeURIComponent would throw.
 */
function percentEncode(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (/^[A-Za-z0-9\-_.~]$/.test(ch)) out += ch;
    else if (code >= 0xd800 && code <= 0xdfff) {
      out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('');
    } else out += encodeURIComponent(ch);
  }
  return out;
}

const deep = (levels: number): unknown => (levels === 0 ? 'bottom' : { a: deep(levels - 1) });
const deepArray = (levels: number): unknown => (levels === 0 ? [] : [deepArray(levels - 1)]);

/** Values no schema should accept where it expects something else, and edge cases where it does. */
const hostileScalar = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    false,
    0,
    -1,
    -0,
    0.5,
    -0.5,
    2 ** 31,
    -(2 ** 31),
    2 ** 53,
    2 ** 53 + 2,
    -(2 ** 53),
    1e21,
    1e308,
    -1e308,
    5e-324,
    'NaN',
    'Infinity',
    '-Infinity',
    '1e999',
    '0x10',
    '1_000',
    '  42  ',
    '',
    ' ',
    '\t\n',
    'null',
    'undefined',
    'true',
    '[]',
    '{}',
    '\u0000',
    'a\u0000b',
    '\ud800',
    'x\udfffy',
    '\ud83d',
    '💥🧨',
    'ﷺ',
    '\u202eevil\u202c',
    'zero\u200bwidth',
    '\ufeffbom',
    'e\u0301\u0301\u0301',
    'مرحبا بالعالم',
    '𝕳𝖊𝖑𝖑𝖔',
    "' OR 1=1 --",
    '"; DROP TABLE users; --',
    '<script>alert(1)</script>',
    '../../etc/passwd',
    '%00',
    '%zz',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a log-injection probe, sent literally
    '${jndi:ldap://127.0.0.1/a}',
    '{{7*7}}',
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    '0000000-0000-4000-8000-000000000000',
    'g0000000-0000-4000-8000-000000000000',
    '{00000000-0000-4000-8000-000000000000}',
    'urn:uuid:00000000-0000-4000-8000-000000000000',
    '2026-02-30T25:61:00Z',
    'x'.repeat(201),
    'x'.repeat(5001),
    'é'.repeat(20_001),
    'x'.repeat(60_000),
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.uuid().map((u) => u),
);

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: hostileScalar },
  { weight: 1, arbitrary: fc.array(hostileScalar, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), hostileScalar, { maxKeys: 4 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(
      deep(200),
      deepArray(500),
      Array.from({ length: 2000 }, (_, i) => i),
      { '': 1 },
    ),
  },
);

/** A value for `schema`: mostly valid, with hostile values at random places inside. */
function fuzzed(schema: JsonSchema, ids: { uuid: string }, depth = 0): fc.Arbitrary<unknown> {
  const valid = fc.constant(sampleOf(schema, ids, depth));
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants && depth < 8) return fc.oneof(valid, hostileValue, ...variants.map((v) => fuzzed(v, ids, depth + 1)));
  if (schema.type === 'object' && schema.properties && depth < 8) {
    const props = Object.entries(schema.properties);
    const fields = Object.fromEntries(
      props.map(([name, prop]) => [
        name,
        fc.option(fc.oneof({ weight: 3, arbitrary: fuzzed(prop, ids, depth + 1) }, hostileValue), {
          nil: undefined,
          freq: 4,
        }),
      ]),
    );
    return fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .record(fields)
          .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))),
      },
      { weight: 1, arbitrary: hostileValue },
    );
  }
  if (schema.type === 'array' && schema.items && depth < 8) {
    return fc.oneof(
      { weight: 3, arbitrary: fc.array(fuzzed(schema.items, ids, depth + 1), { maxLength: 4 }) },
      {
        weight: 1,
        arbitrary: fc.constant(
          Array.from({ length: (schema.maxItems ?? 10) + 1 }, () => sampleOf(schema.items!, ids, depth + 1)),
        ),
      },
      { weight: 1, arbitrary: hostileValue },
    );
  }
  return fc.oneof({ weight: 1, arbitrary: valid }, { weight: 3, arbitrary: hostileValue });
}

type Payload =
  | { kind: 'json'; value: unknown }
  | { kind: 'raw'; bytes: Uint8Array }
  | { kind: 'text'; text: string }
  | { kind: 'none' };

function bodyArbitrary(route: RouteInfo, ids: { uuid: string }): fc.Arbitrary<Payload> {
  const json = route.body ? fuzzed(route.body, ids) : hostileValue;
  return fc.oneof(
    { weight: 8, arbitrary: json.map((value): Payload => ({ kind: 'json', value })) },
    {
      weight: 1,
      arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes): Payload => ({ kind: 'raw', bytes })),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(
          '{',
          '{"a":',
          '[1,2',
          'nul',
          '"\\ud800"',
          '{"a":"\\u0000"}',
          '\u0000',
          '{"a":1}{"b":2}',
          '1e99999',
        )
        .map((text): Payload => ({ kind: 'text', text })),
    },
    { weight: 1, arbitrary: fc.constant<Payload>({ kind: 'none' }) },
  );
}

const queryText = fc.oneof(
  hostileScalar.map((v) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''))),
  fc.constantFrom('0', '1', '200', '201', '-1', '1.5', 'true', 'false', 'yes', ''),
);

function queryArbitrary(route: RouteInfo): fc.Arbitrary<[string, string][]> {
  const names = [...Object.keys(route.query), 'limit', 'cursor', 'x'];
  return fc.array(
    fc.tuple(
      fc.oneof(
        { weight: 5, arbitrary: fc.constantFrom(...names) },
        { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
      ),
      queryText,
    ),
    { maxLength: 4 },
  );
}

/** Each path parameter: a real fixture id, a random id, or something that is not an id at all. */
function paramsArbitrary(route: RouteInfo, world: World): fc.Arbitrary<Record<string, { text: string; raw: boolean }>> {
  const real = defaultParams(world);
  const one = (name: string) =>
    fc.oneof(
      { weight: 2, arbitrary: fc.constant({ text: real[name] ?? NOWHERE, raw: false }) },
      { weight: 1, arbitrary: fc.uuid().map((text) => ({ text, raw: false })) },
      // The real id spelled otherwise: in capitals it is the same id; wrapped it is no id at all.
      {
        weight: 1,
        arbitrary: fc
          .constantFrom(
            (id: string) => id.toUpperCase(),
            (id: string) => `urn:uuid:${id}`,
            (id: string) => `{${id}}`,
          )
          .map((spell) => ({ text: spell(real[name] ?? NOWHERE), raw: false })),
      },
      { weight: 3, arbitrary: queryText.map((text) => ({ text, raw: false })) },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom('%', '%zz', '%00', '..', '%2e%2e', '%2F', 'a%C0%AFb', 'x'.repeat(250))
          .map((text) => ({ text, raw: true })),
      },
    );
  return fc.record(Object.fromEntries(route.pathParams.map((name) => [name, one(name)])));
}

/** Inputs for one route: FUZZ_RUNS with a body to vary, half as many without, never below MIN_RUNS. */
const runsFor = (route: RouteInfo) => Math.max(MIN_RUNS, route.body ? RUNS : Math.ceil(RUNS / 2));

/** Fuzzes share `share` (0-based) of `shares`: the routes whose place in the table is share mod shares. */
export function fuzzRoutes(t: Test, share: number, shares: number): void {
  t.test(
    `fuzzing routes ${share + 1} of every ${shares} from their OpenAPI schemas (seed ${SEED}, FUZZ_RUNS ${RUNS})`,
    async (t) => {
      const world = await buildWorld(t);
      const { app, db, users } = world;
      const table = (await routeTable(app)).filter((r) => r.path.startsWith('/v1/'));
      const routes = [...table.entries()].filter(([i]) => i % shares === share);
      const ids = { uuid: users.member.id };
      let requests = 0;
      let inputs = 0;
      const statuses: Record<number, number> = {};

      for (const [i, route] of routes) {
        const property = fc.asyncProperty(
          bodyArbitrary(route, ids),
          queryArbitrary(route),
          paramsArbitrary(route, world),
          async (payload, query, params) => {
            const path = route.path.replace(/:(\w+)/g, (_, name: string) => {
              const p = params[name]!;
              return p.raw ? p.text : percentEncode(p.text);
            });
            const qs = query.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`).join('&');
            const headers: Record<string, string> = { authorization: `Bearer ${users.owner.token}` };
            let body: string | Buffer | undefined;
            if (payload.kind !== 'none') {
              headers['content-type'] = 'application/json';
              body =
                payload.kind === 'json'
                  ? (JSON.stringify(payload.value) ?? 'null')
                  : payload.kind === 'raw'
                    ? Buffer.from(payload.bytes)
                    : payload.text;
            }
            const before = await snapshot(db);
            const res = await app.inject({
              method: route.method,
              url: qs ? `${path}?${qs}` : path,
              headers,
              ...(body === undefined ? {} : { payload: body }),
            });
            requests++;
            statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
            const what = `${route.method} ${path}${qs ? `?${qs}` : ''} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
            if (res.statusCode >= 500) throw new Error(`server error (seed ${SEED}): ${what}`);
            if (res.statusCode >= 400) {
              if (!String(res.headers['content-type']).startsWith('application/problem+json'))
                throw new Error(`4xx without problem+json (seed ${SEED}): ${what}`);
              const problem = res.json() as { status?: number; code?: string };
              if (problem.status !== res.statusCode || typeof problem.code !== 'string')
                throw new Error(`malformed problem (seed ${SEED}): ${what}`);
              const after = await snapshot(db);
              if (after !== before) {
                const sent = body === undefined ? '(no body)' : String(body).slice(0, 500);
                throw new Error(
                  `a refused request changed the database (seed ${SEED}): ${changedTables(before, after)}\n` +
                    `request: ${what}\nbody: ${sent}`,
                );
              }
            }
          },
        );
        const numRuns = runsFor(route);
        inputs += numRuns;
        // endOnFailure: no shrinking, which would send more writes to a database already changed.
        await fc.assert(property, { seed: SEED + i, numRuns, endOnFailure: true });
      }
      t.pass(
        `${requests} requests over ${routes.length} routes, no 5xx, every 4xx problem+json, refused requests changed nothing`,
      );
      t.equal(requests, inputs, `every route got its inputs (at least ${MIN_RUNS} each)`);
      t.comment(
        `SUMMARY hostile/fuzz share=${share + 1}/${shares} seed=${SEED} runs=${RUNS} routes=${routes.length} requests=${requests} statuses=${JSON.stringify(statuses)} serverErrors=${statuses[500] ?? 0}`,
      );
    },
  );
}
