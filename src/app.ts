import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Config } from './config.js';
import { configPlugin, infrastructurePlugin } from './infra/infrastructure.plugin.js';
import { queuesPlugin } from './jobs/queues.plugin.js';
import { frameworkErrors, registerErrorHandling } from './http/errors.js';
import { registerValidation } from './http/validation.js';
import { appendRouteHook } from './http/route-hooks.js';
import { Problem } from './http/schemas.js';
import { authPlugin } from './http/auth.js';
import { rateLimitPlugin } from './http/rate-limit.js';
import { openApiPlugin } from './http/openapi.js';
import { metricsPlugin } from './http/metrics.js';
import { problemPages } from './http/problem-pages.js';
import { corsPlugin } from './http/cors.js';
import { queueDashboardPlugin } from './http/queue-dashboard.js';
import type { MetricSource } from './metric-source.js';
import { queueDepthSource } from './jobs/queue-metrics.js';
import { settlementSource } from './settlements/settlement-metrics.js';
import { overdueLeasesSource } from './claims/lease-metrics.js';
import { pendingWebhooksSource } from './webhooks/webhook-metrics.js';
import { loggerOptions } from './infra/logger.js';
import { idempotencyPlugin } from './idempotency/idempotency.plugin.js';
import { healthRoutes } from './health/health.routes.js';
import { authRoutes, meRoutes } from './accounts/accounts.routes.js';
import { circleRoutes } from './circles/circles.routes.js';
import { projectRoutes } from './projects/projects.routes.js';
import { projectTaskRoutes } from './projects/project-tasks.routes.js';
import { taskRoutes } from './tasks/tasks.routes.js';
import { taskManagementRoutes } from './task-management/task-management.routes.js';
import { claimRoutes } from './claims/claims.routes.js';
import { reviewRoutes } from './reviews/reviews.routes.js';
import { contributionRoutes } from './contributions/contributions.routes.js';
import { settlementRoutes } from './settlements/settlements.routes.js';
import { ledgerRoutes } from './ledger/ledger.routes.js';
import { challengeRoutes } from './challenges/challenges.routes.js';
import { activityRoutes } from './activity/activity.routes.js';
import { circleHealthRoutes } from './circle-health/circle-health.routes.js';
import { circleLeaderboardRoutes } from './circle-leaderboard/circle-leaderboard.routes.js';
import { webhookRoutes } from './webhooks/webhooks.routes.js';

export interface BuildOptions {
  config: Config;
  /**
   * A logger to share (the server's, from src/infra/logger.ts, which redacts credentials), or
   * false to silence (tests). Default: pino at LOG_LEVEL with the same redaction.
   */
  logger?: FastifyBaseLogger | false;
  /** Figures counted in this process beyond the app's own: the worker role's job metrics. */
  metricSources?: MetricSource[];
  /**
   * `api` (default): everything. `operations`: only what a worker process serves, health,
   * metrics and the operator pages, so its orchestrator can probe it and Prometheus scrape it.
   */
  serve?: 'api' | 'operations';
}

/**
 * TRUST_PROXY as Fastify takes it. A hop count becomes a function trusting the nearest N hops
 * (the socket's peer is hop 0): Fastify itself ignores X-Forwarded-For for a bare number, since
 * a count cannot tell the proxy from a client connecting directly. The operator who sets a count
 * promises that only the proxies reach the service (README, "Behind a proxy").
 */
function trustProxyOption(setting: Config['trustProxy']) {
  if (typeof setting !== 'number') return setting;
  return (_address: string, hop: number) => hop < setting;
}

/**
 * Assembles the HTTP API. It never listens: src/server.ts does, and tests use app.inject().
 */
export async function buildApp(options: BuildOptions): Promise<FastifyInstance> {
  const app = createFastify(options);
  try {
    await registerEverything(app, options);
  } catch (err) {
    // The plugins loaded before the one that failed hold connections (the database pool, Redis):
    // close them, or the process that asked for the app could not exit.
    await app.close().catch(() => {});
    throw err;
  }
  return app;
}

// A plugin here is an async function whose waits on other services have deadlines of their own.
// Fastify's 10 s default, meant for a plugin that never calls `done`, fired on a start-up slowed
// by a starved CPU (a test process at load 17); a minute still names a plugin that hangs.
const PLUGIN_TIMEOUT_MS = 60_000;

function createFastify({ config, logger }: BuildOptions) {
  return Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: logger === false ? false : loggerOptions(config.logLevel) }),
    bodyLimit: config.bodyLimitBytes,
    // Every request gets an id that appears on each of its log lines and in the x-request-id header.
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
    routerOptions: { maxParamLength: 200 },
    // Router-level errors (bad percent-encoding, over-long path segments) as problem+json too.
    frameworkErrors,
    // Off unless TRUST_PROXY names the proxies in front: request.ip (rate limits, logs) is then
    // the client's address from X-Forwarded-For, never a header anyone else could set.
    trustProxy: trustProxyOption(config.trustProxy),
    pluginTimeout: PLUGIN_TIMEOUT_MS,
  }).withTypeProvider<TypeBoxTypeProvider>();
}

async function registerEverything(
  app: ReturnType<typeof createFastify>,
  { config, metricSources = [], serve = 'api' }: BuildOptions,
): Promise<void> {
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // A creating POST sent without a body is treated as an empty object, so its schema can name
  // each missing field instead of answering "body must be object".
  app.addHook('onRoute', (route) => {
    if (!route.schema?.body) return;
    appendRouteHook(route, 'preValidation', async (request: FastifyRequest) => {
      if (request.body === undefined) request.body = {};
    });
  });

  registerValidation(app);
  registerErrorHandling(app);
  app.addSchema(Problem);

  await app.register(configPlugin, { config });
  await app.register(corsPlugin);
  await app.register(infrastructurePlugin);
  await app.register(queuesPlugin);
  // The document lists the routes registered after it: a worker process serves none of the API's.
  if (serve === 'api') await app.register(openApiPlugin);
  // Shared figures are read at scrape time, so any process reports them; the business areas
  // provide them, http/metrics.ts only serves them.
  await app.register(metricsPlugin, {
    sources: [
      queueDepthSource(app.queues),
      settlementSource(app.db),
      overdueLeasesSource(app.db),
      pendingWebhooksSource(app.db),
      ...metricSources,
    ],
  });
  await app.register(authPlugin);
  await app.register(rateLimitPlugin);
  await app.register(idempotencyPlugin);

  await app.register(healthRoutes);
  await app.register(problemPages);
  await app.register(queueDashboardPlugin);
  if (serve === 'operations') return;

  await app.register(
    async (v1) => {
      // Registering, logging in and refreshing are the only routes of /v1 open without a token
      // (their OpenAPI entries say `security: []`).
      await v1.register(authRoutes);
      await v1.register(async (member) => {
        // Every other /v1 route demands a valid access token, checked once here for all of them.
        member.addHook('onRequest', member.authenticate);
        await member.register(meRoutes);
        await member.register(circleRoutes);
        await member.register(projectRoutes);
        await member.register(projectTaskRoutes);
        await member.register(taskRoutes);
        await member.register(taskManagementRoutes);
        await member.register(claimRoutes);
        await member.register(reviewRoutes);
        await member.register(contributionRoutes);
        await member.register(settlementRoutes);
        await member.register(ledgerRoutes);
        await member.register(challengeRoutes);
        await member.register(activityRoutes);
        await member.register(circleLeaderboardRoutes);
        await member.register(circleHealthRoutes);
        await member.register(webhookRoutes);
      });
    },
    { prefix: '/v1' },
  );
}
