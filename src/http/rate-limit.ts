import fp from 'fastify-plugin';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { rateLimited } from '../errors.js';
import { ProcessWindowStore, SharedWindowStore } from './rate-limit-store.js';
import { problems } from './schemas.js';

/**
 * The address a per-IP budget is counted under: an IPv6 client by its /64, the block one customer
 * is given (and can pick any address of), an IPv4 client by its address.
 */
const clientAddress = (request: FastifyRequest) => normalizeIP(request.ip);

// The handlers authRateLimit has made: a route running one of them spends the per-IP auth budget.
const authLimiters = new WeakSet<object>();

/**
 * Whether a route answers 429, read from the same settings the limiter acts on: the global budget
 * covers every route that does not opt out with `config.rateLimit: false`, and the auth budget
 * every route whose preHandlers include an authRateLimit handler.
 */
export function isRateLimited(route: RouteOptions): boolean {
  if (route.config?.rateLimit !== false) return true;
  const pre = route.preHandler === undefined ? [] : [route.preHandler].flat();
  return pre.some((hook) => authLimiters.has(hook));
}

/**
 * Per-user request budget (per IP before login), counted in Redis so every API process shares it;
 * each process counts between syncs to spare a Redis round trip per request (see
 * SharedWindowStore). Without Redis (no REDIS_URL) each process counts in its own memory
 * (ProcessWindowStore): the budget then holds per process, and N processes admit up to N times
 * it. Runs as a preHandler, after authentication, so the key is the verified user id.
 *
 * When Redis is unreachable the limiter fails open (skipOnError): members keep working through a
 * Redis outage, at the cost of no rate limiting until it returns. Login and register carry their
 * own much stricter per-IP budget (see authRateLimit).
 */
export const rateLimitPlugin = fp(
  async (app) => {
    // The OpenAPI document declares the 429 wherever a budget applies, so it cannot drift from it.
    app.addHook('onRoute', (route) => {
      if (!route.schema || route.schema.hide || !isRateLimited(route)) return;
      route.schema = { ...route.schema, response: { ...(route.schema.response as object), ...problems(429) } };
    });
    await app.register(rateLimit, {
      global: true,
      hook: 'preHandler',
      max: app.config.rateLimit.max,
      timeWindow: 60_000,
      store: app.rateLimitRedis
        ? SharedWindowStore.on(app.rateLimitRedis, `${app.config.queuePrefix}:rate:`)
        : ProcessWindowStore,
      skipOnError: true,
      keyGenerator: (request: FastifyRequest) =>
        request.user?.sub ? `u:${request.user.sub}` : `ip:${clientAddress(request)}`,
      errorResponseBuilder: (_request, context) =>
        rateLimited(
          `Rate limit of ${context.max} requests per ${context.after} exceeded; retry after ${context.after}.`,
        ),
    });
  },
  { name: 'rate-limit', dependencies: ['config', 'infrastructure'] },
);

/**
 * One small per-IP budget against credential stuffing, shared by login, register and refresh:
 * switching routes buys an attacker nothing. Use as the routes' preHandler with
 * `config.rateLimit: false`. `perUser` also counts the same budget per signed-in user, for guesses
 * made with a session's token, which an attacker could otherwise spread over many addresses.
 *
 * Counted with the plugin's createRateLimit, not its route handlers: a request runs only the first
 * of those handlers (the plugin marks it as limited), so a second budget, or the global one, would
 * be skipped without a word.
 */
export function authRateLimit(app: FastifyInstance, options: { perUser?: boolean } = {}) {
  const budget = (key: (request: FastifyRequest) => string) =>
    app.createRateLimit({ max: app.config.rateLimit.authMax, timeWindow: 60_000, keyGenerator: key });
  const budgets = [budget((request) => `auth:${clientAddress(request)}`)];
  if (options.perUser) budgets.push(budget((request) => `auth-user:${request.user?.sub ?? clientAddress(request)}`));
  const limiter = async (request: FastifyRequest, reply: FastifyReply) => {
    let tightest: { max: number; remaining: number; ttlInSeconds: number; isExceeded: boolean } | undefined;
    for (const spend of budgets) {
      const spent = await spend(request);
      if (spent.isAllowed) continue; // on the allow list (none is configured)
      if (!tightest || spent.isExceeded || spent.remaining < tightest.remaining) tightest = spent;
      if (spent.isExceeded) break;
    }
    if (!tightest) return;
    // The tightest budget is the one a client must heed: its figures go in the headers.
    reply.header('x-ratelimit-limit', tightest.max);
    reply.header('x-ratelimit-remaining', tightest.remaining);
    reply.header('x-ratelimit-reset', tightest.ttlInSeconds);
    if (tightest.isExceeded) {
      reply.header('retry-after', tightest.ttlInSeconds);
      throw rateLimited(
        `Rate limit of ${tightest.max} attempts per minute exceeded; retry after ${tightest.ttlInSeconds} s.`,
      );
    }
  };
  authLimiters.add(limiter);
  return limiter;
}
