import type { Role } from '../infra/database-schema.js';
import type { Db } from '../infra/postgres.js';
import { forbidden, notFound } from '../errors.js';
import { findMembership } from './circles.repository.js';

export const MANAGERS: readonly Role[] = ['owner', 'admin'];

/**
 * Object-level authorization for everything inside a circle. A caller who is not a member gets the
 * same 404 as for a circle that does not exist (`what` names the resource they asked for), so
 * outsiders learn nothing; a member whose role is not in `roles` gets 403.
 */
export function assertRole(role: Role | undefined, what: string, roles?: readonly Role[]): Role {
  if (!role) throw notFound(what);
  if (roles && !roles.includes(role)) throw forbidden();
  return role;
}

export async function requireMember(db: Db, circleId: string, userId: string, roles?: readonly Role[]): Promise<Role> {
  const membership = await findMembership(db, circleId, userId);
  return assertRole(membership?.role, 'circle', roles);
}
