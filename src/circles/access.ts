import type { Transaction } from 'kysely';
import type { Database, Role } from '../infra/database-schema.js';
import type { Db } from '../infra/postgres.js';
import { forbidden, notFound } from '../errors.js';
import type { NotFoundSubject } from '../error-codes.js';
import { findMembership, lockMembershipShared } from './circles.repository.js';

export const MANAGERS: readonly Role[] = ['owner', 'admin'];

/**
 * Object-level authorization for everything inside a circle. `row` is the resource read with the
 * caller's role in its circle (null: not a member). A caller who is not a member gets the same 404
 * as for a resource that does not exist (`what` names the resource they asked for), so outsiders
 * learn nothing; a member whose role is not in `roles` gets 403. Returns the row, now known to
 * exist and to carry the caller's role.
 */
export function authorize<T extends { role: Role | null }>(
  row: T | undefined,
  what: NotFoundSubject,
  roles?: readonly Role[],
): T & { role: Role } {
  if (!row || !hasRole(row)) throw notFound(what);
  if (roles && !roles.includes(row.role)) throw forbidden();
  return row;
}

const hasRole = <T extends { role: Role | null }>(row: T): row is T & { role: Role } => row.role !== null;

export async function requireMember(db: Db, circleId: string, userId: string, roles?: readonly Role[]): Promise<Role> {
  const membership = await findMembership(db, circleId, userId);
  return authorize(membership, 'circle', roles).role;
}

/**
 * requireMember for a write, in its transaction: the caller's membership is share-locked until the
 * write commits, so a demotion or a departure (an update of that row) waits for the write, or
 * committed first and is seen here. Checked with a plain read, a write by an admin demoted while
 * it ran would commit after the demotion.
 */
export async function requireRole(
  trx: Transaction<Database>,
  circleId: string,
  userId: string,
  roles?: readonly Role[],
): Promise<Role> {
  return authorize(await lockMembershipShared(trx, circleId, userId), 'circle', roles).role;
}
