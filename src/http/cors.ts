import fp from 'fastify-plugin';
import cors from '@fastify/cors';

/** The request headers a browser client of the API sends. */
export const CORS_ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-Id'];
/** The response headers a browser client may read besides the always-visible ones. */
const EXPOSED_HEADERS = [
  'X-Request-Id',
  'Idempotent-Replayed',
  'Retry-After',
  'Content-Disposition',
  'X-RateLimit-Limit',
  'X-RateLimit-Remaining',
  'X-RateLimit-Reset',
];

/**
 * CORS for browser clients on other origins, only when CORS_ORIGINS names them: without it the
 * service sends no CORS headers and browsers keep other origins' scripts out. Origins are matched
 * exactly (no patterns: a loose pattern is how CORS settings leak). Credentials (cookies) are not
 * allowed: the API authenticates with bearer tokens, which a page sends explicitly.
 */
export const corsPlugin = fp(
  async (app) => {
    const origins = app.config.corsOrigins;
    if (!origins) return;
    await app.register(cors, {
      origin: origins === '*' ? '*' : origins,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: CORS_ALLOWED_HEADERS,
      exposedHeaders: EXPOSED_HEADERS,
      credentials: false,
      // Browsers cache a preflight this long (Chromium caps it at 2 hours).
      maxAge: 600,
    });
  },
  { name: 'cors', dependencies: ['config'] },
);
