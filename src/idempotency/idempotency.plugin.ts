import { createHash } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { Type } from 'typebox';
import { invalid, conflict, unprocessable } from '../errors.js';
import { acquireKey, completeKey, releaseKey } from './idempotency.repository.js';
import { appendRouteHook } from '../http/route-hooks.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Creating POST that honours the Idempotency-Key header. */
    idempotent?: boolean;
  }
  interface FastifyRequest {
    idempotencyKey?: string;
  }
}

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/**
 * Declares the header in the route's schema (and so in the OpenAPI document and the typed client)
 * from the same `idempotent` flag that attaches the hooks. The schema only documents it: takeKey
 * checks the value, so a bad key still answers invalid_idempotency_key.
 */
function declareKeyHeader(route: RouteOptions): void {
  const schema = route.schema ?? {};
  const headers = (schema.headers ?? { type: 'object', properties: {} }) as { properties?: Record<string, unknown> };
  route.schema = {
    ...schema,
    headers: {
      ...headers,
      properties: {
        ...headers.properties,
        'Idempotency-Key': Type.String({
          description:
            'Makes the request safe to retry: 1-255 visible ASCII characters (e.g. a UUID), unique per request. ' +
            'A replay within a day answers the first response (header idempotent-replayed: true); ' +
            'the same key with another body is 422 idempotency_key_reused.',
        }),
      },
    },
  };
}

/**
 * Idempotency-Key for creating POSTs, stored in Postgres so every API process sees it:
 * the first response (status and body) is replayed for the same key and body; the same key with
 * another body is 422; a duplicate arriving while the first is still running is 409. Keys are
 * scoped to the authenticated user, so one client can never receive another's response.
 * Server errors (5xx) are not stored: the client may retry them with the same key.
 */
export const idempotencyPlugin = fp(
  async (app) => {
    const takeKey = async (request: FastifyRequest, reply: FastifyReply) => {
      const header = request.headers['idempotency-key'];
      if (header === undefined) return;
      const key = Array.isArray(header) ? header[0] : header;
      if (!key || !KEY_PATTERN.test(key))
        throw invalid('invalid_idempotency_key', 'Idempotency-Key must be 1-255 visible ASCII characters.');
      const userId = request.user.sub;
      const hash = createHash('sha256')
        .update(`${request.method} ${request.url}\n`)
        .update(JSON.stringify(request.body ?? null))
        .digest();
      const state = await acquireKey(app.db, userId, key, hash);
      switch (state.kind) {
        case 'acquired':
          request.idempotencyKey = key;
          return;
        case 'mismatch':
          throw unprocessable('idempotency_key_reused', 'This Idempotency-Key was used with a different request.');
        case 'in_progress':
          throw conflict(
            'idempotency_request_in_progress',
            'A request with this Idempotency-Key is still being processed.',
          );
        case 'completed':
          reply.header('idempotent-replayed', 'true').code(state.status).type(state.type);
          return reply.send(state.body);
      }
    };

    const storeResponse = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      const key = request.idempotencyKey;
      if (!key) return payload;
      request.idempotencyKey = undefined;
      if (reply.statusCode >= 500) {
        await releaseKey(app.db, request.user.sub, key);
      } else {
        const type = String(reply.getHeader('content-type') ?? 'application/json');
        await completeKey(
          app.db,
          request.user.sub,
          key,
          reply.statusCode,
          type,
          typeof payload === 'string' ? payload : String(payload ?? ''),
        );
      }
      return payload;
    };

    // Both hooks belong to the idempotent routes only. The preHandler comes after the rate
    // limiter's (its plugin is registered first, so its onRoute hook runs first): a replay costs a
    // request like any other, and a request refused with 429 never takes the key, which would
    // otherwise replay that 429 for a day.
    app.addHook('onRoute', (route) => {
      if (!route.config?.idempotent) return;
      appendRouteHook(route, 'preHandler', takeKey);
      appendRouteHook(route, 'onSend', storeResponse);
      declareKeyHeader(route);
    });
  },
  { name: 'idempotency', dependencies: ['rate-limit'] },
);
