import type { RouteOptions } from 'fastify';

type RouteHookName = 'preValidation' | 'preHandler' | 'onSend';

/**
 * Adds a hook to one route from an onRoute hook, after the route's own and earlier plugins' hooks
 * of the same kind. Work that only some routes need (idempotency keys, request bodies) is attached
 * to those routes, so a plain read runs none of it: each application-wide hook costs every request.
 */
export function appendRouteHook<K extends RouteHookName>(
  route: RouteOptions,
  name: K,
  hook: NonNullable<RouteOptions[K]>,
): void {
  const existing = route[name];
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [existing];
  route[name] = [...list, ...(Array.isArray(hook) ? hook : [hook])] as RouteOptions[K];
}
