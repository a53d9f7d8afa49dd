import t from 'tap';
import { buildApp } from '../src/app.js';
import { createTestEnv } from './helper.js';
import { waitFor } from './marketplace-helpers.js';

// buildApp loads plugins in order, and the early ones open connections (Redis for rate limits and
// queue producers). When a later plugin fails, buildApp closes what was opened before it rethrows:
// a failed start must leave no socket behind, or the process that asked could never exit.

const openSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

t.test('an app whose start fails part-way closes the connections its earlier plugins opened', async (t) => {
  const { config } = await createTestEnv(t);
  const before = openSockets();
  const broken = {
    name: 'broken',
    register() {
      throw new Error('this source cannot register');
    },
  };
  await t.rejects(buildApp({ config, logger: false, metricSources: [broken] }), {
    message: 'this source cannot register',
  });
  const closed = await waitFor(async () => openSockets() <= before, 20_000);
  t.ok(closed, `sockets open: ${before} before the start, ${openSockets()} after it failed`);
});
