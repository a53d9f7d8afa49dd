import fp from 'fastify-plugin';
import jwt from '@fastify/jwt';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, unauthorized } from './errors.js';

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string };
    user: { sub: string };
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: demands a valid access token and sets request.user. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  }
}

const USER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Access tokens are short-lived HS256 JWTs. The algorithm is pinned (so `alg: none` or a
 * swapped algorithm is refused) and issuer, audience and expiry are always checked.
 */
export const authPlugin = fp(async (app) => {
  const { secret, issuer, audience, accessTtlSeconds } = app.config.jwt;
  await app.register(jwt, {
    secret,
    sign: { algorithm: 'HS256', iss: issuer, aud: audience, expiresIn: accessTtlSeconds },
    // fast-jwt only checks iss/aud when present, so they must be required too.
    verify: { algorithms: ['HS256'], allowedIss: issuer, allowedAud: audience, requiredClaims: ['exp', 'sub', 'iss', 'aud'] },
  });

  app.decorate('authenticate', async (request: FastifyRequest) => {
    if (!request.headers.authorization) throw unauthorized('missing_token', 'This route needs Authorization: Bearer <access token>.');
    try {
      await request.jwtVerify();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED') throw unauthorized('token_expired', 'The access token has expired; refresh it.');
      throw unauthorized('invalid_token', 'The access token is not valid.');
    }
    // Only a holder of the signing key can mint a token, but its subject still reaches SQL as a
    // uuid: anything else must be a 401 here, not a cast error (500) in the first query.
    const sub = request.user?.sub;
    if (typeof sub !== 'string' || !USER_ID.test(sub)) throw new AppError(401, 'invalid_token', 'The access token is not valid.');
  });
}, { name: 'auth', dependencies: ['config'] });
