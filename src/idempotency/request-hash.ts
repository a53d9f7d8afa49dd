import { createHash } from 'node:crypto';

/**
 * What identifies a request for its Idempotency-Key: method, URL and body. The body is hashed in a
 * canonical form (object keys sorted at every depth, array order kept), so a client that rebuilds
 * the same body with its keys in another order is recognised as sending the same request.
 */
export function requestHash(method: string, url: string, body: unknown): Buffer {
  return createHash('sha256')
    .update(`${method} ${url}\n`)
    .update(canonicalJson(body ?? null))
    .digest();
}

export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = Object.create(null);
    for (const key of Object.keys(v).sort()) sorted[key] = (v as Record<string, unknown>)[key];
    return sorted;
  });
}
