import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { unauthorized } from '../errors.js';
import { replyWithError } from './errors.js';

/** The realm a browser shows in its sign-in prompt for the operator pages. */
const REALM = 'circle-actions operator';

// Both sides are hashed first, so the comparison takes the same time whatever the lengths.
const digest = (text: string) => createHash('sha256').update(text).digest();

/** The token a request presents: `Bearer <token>`, or basic auth with the token as the password. */
function presentedToken(header: string | undefined): string | null {
  if (!header) return null;
  const [scheme, value = ''] = header.split(' ', 2);
  if (scheme?.toLowerCase() === 'bearer') return value;
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon === -1 ? null : decoded.slice(colon + 1);
  }
  return null;
}

/**
 * An onRequest hook admitting only requests that present OPERATOR_TOKEN: as a bearer token
 * (scripts, curl) or as the password of basic auth, any user name (a browser asks for it when
 * the 401 says `WWW-Authenticate: Basic`, and sends it on every request of the page after).
 */
export function requireOperatorToken(token: string) {
  const wanted = digest(token);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const given = presentedToken(request.headers.authorization);
    if (given !== null && timingSafeEqual(digest(given), wanted)) return;
    reply.header('www-authenticate', `Basic realm="${REALM}", charset="UTF-8"`);
    return replyWithError(
      reply,
      unauthorized(
        given === null ? 'missing_token' : 'invalid_token',
        'The operator pages need the OPERATOR_TOKEN: a bearer token, or the password of basic auth.',
      ),
    );
  };
}
