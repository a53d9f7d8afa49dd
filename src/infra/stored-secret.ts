import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';

// A secret generated once and kept in a file only its owner reads (0600), so it survives restarts:
// the JWT key of embedded mode, where tokens issued before a restart must stay valid after it.

const MIN_LENGTH = 32;

/** Reads the secret in `path`, or generates one there; `created` tells which. */
export async function readOrCreateSecret(path: string): Promise<{ secret: string; created: boolean }> {
  try {
    const secret = (await readFile(path, 'utf8')).trim();
    if (secret.length < MIN_LENGTH) throw new Error(`${path} holds fewer than ${MIN_LENGTH} characters`);
    return { secret, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(48).toString('base64url');
  // 'wx': never overwrite a secret that appeared meanwhile (tokens signed with it would die).
  await writeFile(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return { secret, created: true };
}
