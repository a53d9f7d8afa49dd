// The SQL limit's load generator, run as its own process (like pgbench): `connections` clients,
// each holding one Postgres connection and running the given statements in a loop, straight
// through pg, for warm-up plus the measured seconds. Reports progress and the result over IPC.
import pg from 'pg';
import type { SqlLoadSpec } from './lib/sql-load.js';
import { bindValues } from './lib/statements.js';
import { nextMessage, readSpec, send } from './lib/child.js';

const spec = readSpec<SqlLoadSpec>();

// Connect one by one, waiting out a moment of "too many clients" (other processes' pools closing).
async function connect(): Promise<pg.Client> {
  for (let attempt = 0; ; attempt++) {
    const c = new pg.Client({ connectionString: spec.databaseUrl });
    try {
      await c.connect();
      return c;
    } catch (err) {
      if ((err as { code?: string }).code !== '53300' || attempt >= 60) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
const clients: pg.Client[] = [];
for (let i = 0; i < spec.connections; i++) clients.push(await connect());

let counter = 0;
let measuring = false;
let stopAt = 0;
let done = 0;
let empty = 0;
let perSecond = 0;
let latencies = new Float64Array(1 << 16);

function record(ms: number) {
  if (done === latencies.length) {
    const grown = new Float64Array(latencies.length * 2);
    grown.set(latencies);
    latencies = grown;
  }
  latencies[done++] = ms;
}

async function loop(client: pg.Client) {
  while (performance.now() < stopAt) {
    const i = counter++;
    const t0 = performance.now();
    if (spec.transaction) await client.query('BEGIN');
    let rows = 1;
    for (const [s, step] of spec.steps.entries()) {
      const result = await client.query({
        name: step.name,
        text: step.text,
        values: bindValues(step.values, spec.rotations, i),
      });
      if (s === spec.steps.length - 1) rows = result.rowCount ?? 0;
    }
    if (spec.transaction) await client.query('COMMIT');
    const ms = performance.now() - t0;
    if (measuring) {
      record(ms);
      perSecond++;
      if (rows === 0) empty++;
    }
  }
}

async function phase(seconds: number, measure: boolean) {
  measuring = measure;
  stopAt = performance.now() + seconds * 1000;
  if (measure) send({ type: 'start' });
  const ticker = measure
    ? setInterval(() => {
        send({ type: 'tick', rate: perSecond });
        perSecond = 0;
      }, 1000)
    : null;
  const t0 = performance.now();
  await Promise.all(clients.map(loop));
  ticker && clearInterval(ticker);
  return (performance.now() - t0) / 1000;
}

try {
  if (spec.warmupSeconds > 0) await phase(spec.warmupSeconds, false);
  // The parent may prepare the measurement after the warm-up (refresh statistics); wait for it.
  const go = nextMessage();
  send({ type: 'warm' });
  await go;
  const seconds = await phase(spec.seconds, true);
  // The parent reads the backends' CPU time now, while they still exist, then lets us go on.
  const ack = nextMessage();
  send({ type: 'end' });
  await ack;
  const sorted = latencies.subarray(0, done).sort();
  const pct = (p: number) => (done ? sorted[Math.min(done - 1, Math.floor((p / 100) * done))]! : 0);
  send({ type: 'result', result: { rps: done / seconds, p50: pct(50), p99: pct(99), ok: done, empty, seconds } });
} catch (err) {
  send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exitCode = 1;
} finally {
  await Promise.all(clients.map((c) => c.end()));
  process.disconnect?.();
}
