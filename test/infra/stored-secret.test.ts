import { statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readOrCreateSecret } from '../../src/infra/stored-secret.js';

// Embedded mode's JWT key: generated once, readable by its owner only, the same after a restart.

t.test('a secret is generated once, kept 0600, and read back unchanged', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ca-secret-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'jwt-secret');

  const first = await readOrCreateSecret(path);
  t.equal(first.created, true);
  t.ok(first.secret.length >= 32, 'long enough for HS256');
  t.match(first.secret, /^[A-Za-z0-9_-]+$/, 'printable');
  t.equal(statSync(path).mode & 0o777, 0o600);

  const again = await readOrCreateSecret(path);
  t.same(again, { secret: first.secret, created: false });

  const other = await readOrCreateSecret(join(dir, 'other'));
  t.not(other.secret, first.secret, 'each installation gets its own');
});

t.test('a file too short to be a key stops start-up rather than being used or replaced', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ca-secret-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'jwt-secret');
  await writeFile(path, 'short\n');
  await t.rejects(readOrCreateSecret(path), { message: `${path} holds fewer than 32 characters` });
});
