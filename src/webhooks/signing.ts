import { createHmac, randomBytes } from 'node:crypto';
import type { RetiredSecret } from '../infra/database-schema.js';

// Signing in the Standard Webhooks format (https://www.standardwebhooks.com): the secret is
// `whsec_` + base64 of random bytes, the key is those bytes, and each signature is
// `v1,` + base64(HMAC-SHA256(key, `${id}.${timestamp}.${body}`)). Several signatures travel
// space-separated in one header, which is how a rotated secret keeps verifying during its grace.

const PREFIX = 'whsec_';
const SECRET_BYTES = 32;

/** A new signing secret: 32 random bytes, base64, behind the standard's prefix. */
export function generateSecret(): string {
  return PREFIX + randomBytes(SECRET_BYTES).toString('base64');
}

function keyOf(secret: string): Buffer {
  if (!secret.startsWith(PREFIX)) throw new Error('not a webhook signing secret');
  return Buffer.from(secret.slice(PREFIX.length), 'base64');
}

/** One `v1,<base64>` signature of a message. `timestamp` is in unix seconds. */
export function sign(secret: string, messageId: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${messageId}.${timestamp}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The headers of one attempt, signed with every secret given (current first). */
export function signedHeaders(
  secrets: readonly string[],
  messageId: string,
  timestamp: number,
  body: string,
): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': secrets.map((s) => sign(s, messageId, timestamp, body)).join(' '),
  };
}

/** The retired secrets still in their grace at `now`, newest first. */
export function liveRetiredSecrets(retired: readonly RetiredSecret[], now: number): RetiredSecret[] {
  return retired.filter((r) => Date.parse(r.expiresAt) > now);
}

/** The secrets that sign now: the current one first, then every retired one while its grace lasts. */
export function signingSecrets(endpoint: { secret: string; retired_secrets: readonly RetiredSecret[] }, now: number) {
  return [endpoint.secret, ...liveRetiredSecrets(endpoint.retired_secrets, now).map((r) => r.secret)];
}

/** How long a rotated-out secret keeps signing. */
export const SECRET_GRACE_MS = 24 * 3600 * 1000;

/**
 * How many retired secrets an endpoint keeps signing with: a sixth rotation within a grace period
 * retires the oldest early, so a header never carries more than six signatures.
 */
export const MAX_RETIRED_SECRETS = 5;
