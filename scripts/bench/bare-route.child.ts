// The HTTP limit: a bare Fastify route that runs the endpoint's statements straight through a pg
// pool and answers with the last one's first row as JSON. No authentication, rate limit, hooks,
// validation or query builder: what any HTTP service pays to put the same SQL behind a route on
// this machine. Run as its own process, like the service's API; reports its port over IPC.
import Fastify from 'fastify';
import pg from 'pg';
import type { BareRouteSpec } from './lib/bare-route.js';
import { bindValues } from './lib/statements.js';
import { readSpec, send } from './lib/child.js';

const spec = readSpec<BareRouteSpec>();
const pool = new pg.Pool({ connectionString: spec.databaseUrl, max: spec.poolSize });
const app = Fastify({ logger: false });
let counter = 0;

async function run(): Promise<unknown> {
  const i = counter++;
  const client = await pool.connect();
  try {
    let last: pg.QueryResult | null = null;
    for (const step of spec.steps)
      last = await client.query({
        name: step.name,
        text: step.text,
        values: bindValues(step.values, spec.rotations, i),
      });
    return last?.rows[0] ?? null;
  } finally {
    client.release();
  }
}

app.route({ method: ['GET', 'POST'], url: '/bare', handler: async () => ({ row: await run() }) });

process.once('SIGTERM', () => {
  app
    .close()
    .then(() => pool.end())
    .finally(() => process.exit(0));
});

try {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  send({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 });
} catch (err) {
  send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}
