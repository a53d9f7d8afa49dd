import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const scrypt = (password: string, salt: Buffer, keylen: number, options: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) =>
    scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))),
  );

const KEY_LENGTH = 32;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;

/**
 * scrypt with the OWASP parameters (N = 2^17, r = 8, p = 1) by default. The parameters are stored
 * in the hash, so raising the cost later keeps old hashes verifiable.
 * Format: scrypt$<log2 N>$<r>$<p>$<salt b64>$<key b64>
 */
export async function hashPassword(password: string, log2Cost: number): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_LENGTH, options(log2Cost, BLOCK_SIZE, PARALLELISM));
  return ['scrypt', log2Cost, BLOCK_SIZE, PARALLELISM, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, cost, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !cost || !r || !p || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64');
  const actual = await scrypt(
    password,
    Buffer.from(salt, 'base64'),
    expected.length,
    options(Number(cost), Number(r), Number(p)),
  );
  return timingSafeEqual(actual, expected);
}

function options(log2Cost: number, r: number, p: number): ScryptOptions {
  const N = 2 ** log2Cost;
  // scrypt needs 128·N·r bytes; allow exactly that plus headroom.
  return { N, r, p, maxmem: 128 * N * r + 1024 * 1024 };
}
