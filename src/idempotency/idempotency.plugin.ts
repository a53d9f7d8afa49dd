import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { Type } from 'typebox';
import { invalid, conflict, unprocessable } from '../errors.js';
import { runWithCommitMark } from '../events/commit-marks.js';
import { acquireKey, completeKey, markKeyApplied, releaseKey } from './idempotency.repository.js';
import { requestHash } from './request-hash.js';
import { appendRouteHook } from '../http/route-hooks.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Creating POST that honours the Idempotency-Key header. */
    idempotent?: boolean;
  }
  interface FastifyRequest {
    idempotencyKey?: KeyHolder;
  }
}

/** The key this request holds while it runs. */
interface KeyHolder {
  userId: string;
  key: string;
  holder: string;
  /** Until the response is sent: only the request's own changes mark the key as applied. */
  open: boolean;
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
 *
 * The response can only be stored after the change has committed, so a process can die between
 * the two. The change's own transaction therefore marks the key as applied (a commit mark, written
 * with the change's outbox events): such a key is never taken over as abandoned, and a retry is
 * told 409 idempotency_response_lost instead of applying the change a second time.
 */
export const idempotencyPlugin = fp(
  async (app) => {
    const takeKey = async (
      request: FastifyRequest,
      reply: FastifyReply,
    ): Promise<KeyHolder | 'replayed' | undefined> => {
      const header = request.headers['idempotency-key'];
      if (header === undefined) return undefined;
      const key = Array.isArray(header) ? header[0] : header;
      if (!key || !KEY_PATTERN.test(key))
        throw invalid('invalid_idempotency_key', 'Idempotency-Key must be 1-255 visible ASCII characters.');
      const userId = request.user.sub;
      const state = await acquireKey(app.db, userId, key, requestHash(request.method, request.url, request.body));
      switch (state.kind) {
        case 'acquired':
          return { userId, key, holder: state.holder, open: true };
        case 'mismatch':
          throw unprocessable('idempotency_key_reused', 'This Idempotency-Key was used with a different request.');
        case 'in_progress':
          throw conflict(
            'idempotency_request_in_progress',
            'A request with this Idempotency-Key is still being processed.',
          );
        case 'response_lost':
          throw conflict(
            'idempotency_response_lost',
            'The request with this Idempotency-Key was applied, but its response was lost; read the resource to see the outcome.',
          );
        case 'completed':
          reply.header('idempotent-replayed', 'true').code(state.status).type(state.type);
          reply.send(state.body);
          return 'replayed';
      }
    };

    // Callback style on purpose: the rest of the request (handler included) runs inside the
    // commit mark's async context, which an async hook cannot open around what follows it.
    const takeKeyHook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
      takeKey(request, reply).then((held) => {
        // A replay has been sent from here: the route's handler must not run (done is not called).
        if (held === 'replayed') return;
        if (!held) return done();
        request.idempotencyKey = held;
        runWithCommitMark(async (trx) => {
          // Once the response is on its way, work the request started is no longer its change.
          if (!held.open) return;
          if (!(await markKeyApplied(trx, held.userId, held.key, held.holder)))
            throw conflict(
              'idempotency_request_in_progress',
              'This request took too long: a retry with the same Idempotency-Key is being processed instead.',
            );
        }, done);
      }, done);
    };

    const storeResponse = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      const held = request.idempotencyKey;
      if (!held) return payload;
      request.idempotencyKey = undefined;
      held.open = false;
      if (reply.statusCode >= 500) {
        await releaseKey(app.db, held.userId, held.key, held.holder);
      } else {
        await completeKey(app.db, held.userId, held.key, held.holder, {
          status: reply.statusCode,
          type: String(reply.getHeader('content-type') ?? 'application/json'),
          body: typeof payload === 'string' ? payload : String(payload ?? ''),
        });
      }
      return payload;
    };

    // Both hooks belong to the idempotent routes only. The preHandler comes after the rate
    // limiter's (its plugin is registered first, so its onRoute hook runs first): a replay costs a
    // request like any other, and a request refused with 429 never takes the key, which would
    // otherwise replay that 429 for a day.
    app.addHook('onRoute', (route) => {
      if (!route.config?.idempotent) return;
      appendRouteHook(route, 'preHandler', takeKeyHook);
      appendRouteHook(route, 'onSend', storeResponse);
      declareKeyHeader(route);
    });
  },
  { name: 'idempotency', dependencies: ['rate-limit'] },
);
