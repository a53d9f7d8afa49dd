import fp from 'fastify-plugin';
import jwt from '@fastify/jwt';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { unauthorized } from '../errors.js';
import { isUuid } from '../infra/uuid.js';

declare module '@fastify/jwt' {
  interface FastifyJWT {
    /** `sid`: the session (refresh-token family) the token was issued for; older tokens have none. */
    payload: { sub: string; sid?: string };
    user: { sub: string; sid?: string };
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: demands a valid access token and sets request.user. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  }
}

// fast-jwt's error code for a token past its exp (what @fastify/jwt's verifier throws).
const TOKEN_EXPIRED = 'FAST_JWT_EXPIRED';

// Enough for every member active in the last few minutes on one API process (LRU beyond that).
const VERIFIED_TOKENS_CACHED = 10_000;

/**
 * Access tokens are short-lived HS256 JWTs. The algorithm is pinned (so `alg: none` or a
 * swapped algorithm is refused) and issuer, audience and expiry are always checked.
 */
export const authPlugin = fp(
  async (app) => {
    const { secret, issuer, audience, accessTtlSeconds } = app.config.jwt;
    await app.register(jwt, {
      secret,
      sign: { algorithm: 'HS256', iss: issuer, aud: audience, expiresIn: accessTtlSeconds },
      verify: {
        // fast-jwt only checks iss/aud when present, so they must be required too.
        algorithms: ['HS256'],
        allowedIss: issuer,
        allowedAud: audience,
        requiredClaims: ['exp', 'sub', 'iss', 'aud'],
        // A client sends the same token on every request until it expires. Remembering verified
        // tokens (keyed by the token's hash, never trusted past their exp) spares the signature
        // check and decoding, two thirds of the cost of verifying. Refused tokens are not kept.
        cache: VERIFIED_TOKENS_CACHED,
      },
    });

    // The token is checked with the plugin's verifier directly: request.jwtVerify() would decode it
    // twice and merge options on every request, a tenth of a simple read's CPU.
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      if (!header) throw unauthorized('missing_token', 'This route needs Authorization: Bearer <access token>.');
      const [scheme, token, ...rest] = header.split(' ');
      if (rest.length || !token || scheme?.toLowerCase() !== 'bearer')
        throw unauthorized('invalid_token', 'The access token is not valid.');
      let payload: { sub?: unknown; sid?: unknown };
      try {
        payload = app.jwt.verify(token);
      } catch (err) {
        if ((err as { code?: string }).code === TOKEN_EXPIRED)
          throw unauthorized('token_expired', 'The access token has expired; refresh it.');
        throw unauthorized('invalid_token', 'The access token is not valid.');
      }
      // Only a holder of the signing key can mint a token, but its subject still reaches SQL as a
      // uuid: anything else must be a 401 here, not a cast error (500) in the first query.
      const sub = payload?.sub;
      if (!isUuid(sub)) throw unauthorized('invalid_token', 'The access token is not valid.');
      // The session id only narrows what a password change keeps; one that is not a uuid keeps nothing.
      const sid = payload.sid;
      request.user = isUuid(sid) ? { sub, sid } : { sub };
    });
  },
  { name: 'auth', dependencies: ['config'] },
);
