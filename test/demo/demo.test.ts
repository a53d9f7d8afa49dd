import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import t from 'tap';
import { onEachQueueBackend } from '../helper.js';
import { startService } from '../running-service.js';
import { childEnv } from '../service-process.js';

// `npm run demo` as a user runs it, against the real service: it must finish, and the statement it
// prints must pay out exactly the pool.

function runDemo(baseUrl: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done, fail) => {
    const child = spawn(resolve('node_modules/.bin/node'), ['--import', 'tsx', 'scripts/demo.ts'], {
      env: childEnv({ DEMO_BASE_URL: baseUrl }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.once('error', fail);
    child.once('exit', (code) => done({ code, out, err }));
  });
}

onEachQueueBackend(t, 'the demo plays the whole story and pays out exactly the pool', async (t, backend) => {
  const { baseUrl } = await startService(t, backend);
  const { code, out, err } = await runDemo(baseUrl);
  t.equal(code, 0, `demo output:\n${out}\n${err}`);
  const pool = /reward pool: (\d+) CNY_cents/.exec(out)?.[1];
  const total = /^Total paid: (\d+) CNY_cents of a pool of (\d+) CNY_cents$/m.exec(out);
  t.equal(pool, '100000');
  t.equal(total?.[1], pool, 'the printed total is the pool');
  t.equal(total?.[2], pool);
  t.match(out, /^Total\s+\d+\s+100%\s+¥1000\.00\s+100000$/m, 'the table ends with its total line');
  t.match(out, /asks .+ to revise/);
  t.match(out, /rejects/);
  t.match(out, /checks in for/);
  t.match(out, /Circle health/);
});
