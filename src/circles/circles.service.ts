import type { AppContext } from '../context.js';
import { randomBytes } from 'node:crypto';
import type { JoinPolicy, Role } from '../infra/database-schema.js';
import { conflict, forbidden, notFound, unauthorized } from '../errors.js';
import { isForeignKeyViolation } from '../infra/pg-errors.js';
import { decodeCursor, pageOf } from '../infra/cursors.js';
import { type NewEvent, recordEvent, recordEvents } from '../events/events.repository.js';
import { MANAGERS, requireMember, requireRole } from './access.js';
import * as repo from './circles.repository.js';
import { assertIanaTimeZone, assertPostgresKnowsTimeZone } from './timezones.js';

type CircleRow = {
  id: string;
  name: string;
  description: string;
  join_policy: JoinPolicy;
  owner_id: string;
  timezone: string;
  created_at: Date;
  role: Role;
};

const toCircleView = (c: CircleRow) => ({
  id: c.id,
  name: c.name,
  description: c.description,
  joinPolicy: c.join_policy,
  ownerId: c.owner_id,
  timezone: c.timezone,
  createdAt: c.created_at,
  role: c.role,
});

type MemberRow = { user_id: string; handle: string; display_name: string; role: Role; joined_at: Date };

const toMemberView = (circleId: string, m: MemberRow) => ({
  circleId,
  userId: m.user_id,
  handle: m.handle,
  displayName: m.display_name,
  role: m.role,
  joinedAt: m.joined_at,
});

/**
 * A validly signed token can name an account this database does not have (restored from an older
 * backup, or a token minted for another environment sharing the key). Where that id is written as
 * a foreign key, the violation means exactly this: a 401, not a 500.
 */
function unknownAccount(err: unknown): never {
  if (isForeignKeyViolation(err, /user|owner/)) {
    throw unauthorized('invalid_token', 'The account this access token was issued to does not exist.');
  }
  throw err;
}

export async function createCircle(
  ctx: AppContext,
  userId: string,
  input: { name: string; description?: string; joinPolicy: JoinPolicy },
) {
  return ctx.db
    .transaction()
    .execute(async (trx) => {
      const circle = await repo.insertCircle(trx, {
        name: input.name,
        description: input.description ?? '',
        joinPolicy: input.joinPolicy,
        ownerId: userId,
      });
      await recordEvent(trx, { circleId: circle.id, type: 'circle.created', subjectId: circle.id, actorId: userId });
      return toCircleView({ ...circle, role: 'owner' });
    })
    .catch(unknownAccount);
}

export async function listMyCircles(ctx: AppContext, userId: string, limit: number, cursor?: string) {
  const after = decodeCursor(cursor, ['number', 'uuid']) as [number, string] | null;
  const rows = await repo.listCirclesOfUser(ctx.db, userId, limit, after);
  const page = pageOf(rows, limit, (r) => [r.cursor_ts, r.id]);
  return { items: page.items.map(toCircleView), nextCursor: page.nextCursor };
}

export async function getCircle(ctx: AppContext, userId: string, circleId: string) {
  const circle = await repo.findCircleForMember(ctx.db, circleId, userId);
  if (!circle) throw notFound('circle');
  return toCircleView(circle);
}

type CircleChanges = { name?: string; description?: string; joinPolicy?: JoinPolicy; timezone?: string };

/**
 * Changes a circle's settings; owner only (admins 403). One `circle.updated` event lists each
 * field that changed, from and to; a request that changes nothing records none.
 */
export async function updateCircle(ctx: AppContext, userId: string, circleId: string, input: CircleChanges) {
  if (input.timezone !== undefined) assertIanaTimeZone(input.timezone);
  return ctx.db.transaction().execute(async (trx) => {
    await requireRole(trx, circleId, userId, ['owner']);
    const current = await repo.lockCircle(trx, circleId);
    if (!current) throw notFound('circle');
    if (input.timezone !== undefined) await assertPostgresKnowsTimeZone(trx, input.timezone);
    const next = {
      name: input.name ?? current.name,
      description: input.description ?? current.description,
      join_policy: input.joinPolicy ?? current.join_policy,
      timezone: input.timezone ?? current.timezone,
    };
    const changes = Object.fromEntries(
      (['name', 'description', 'join_policy', 'timezone'] as const)
        .filter((field) => next[field] !== current[field])
        .map((field) => [field === 'join_policy' ? 'joinPolicy' : field, { from: current[field], to: next[field] }]),
    );
    if (Object.keys(changes).length === 0) return toCircleView({ ...current, role: 'owner' });
    const updated = await repo.updateCircle(trx, circleId, next);
    await recordEvent(trx, {
      circleId,
      type: 'circle.updated',
      subjectId: circleId,
      actorId: userId,
      payload: { changes },
    });
    return toCircleView({ ...updated, role: 'owner' });
  });
}

const INVITE_TTL_DEFAULT = 7 * 86400;

/**
 * Issues an invite code (owner, admin), with its `invite.created` event in the same transaction.
 * The code itself stays out of the event, as it does for `invite.revoked`: every member reads the
 * activity feed, and webhooks carry it out of the circle.
 */
export async function createInvite(
  ctx: AppContext,
  userId: string,
  circleId: string,
  input: { expiresInSeconds?: number; maxUses?: number },
) {
  return ctx.db.transaction().execute(async (trx) => {
    await requireRole(trx, circleId, userId, MANAGERS);
    // 16 random bytes: unguessable, and short enough to paste into a chat.
    const code = randomBytes(16).toString('base64url');
    const invite = await repo.insertInvite(trx, {
      code,
      circleId,
      createdBy: userId,
      ttlSeconds: input.expiresInSeconds ?? INVITE_TTL_DEFAULT,
      maxUses: input.maxUses ?? null,
    });
    await recordEvent(trx, {
      circleId,
      type: 'invite.created',
      actorId: userId,
      payload: { expiresAt: invite.expires_at, maxUses: invite.max_uses },
    });
    return { code: invite.code, expiresAt: invite.expires_at, maxUses: invite.max_uses };
  });
}

type InviteRow = {
  code: string;
  expires_at: Date;
  max_uses: number | null;
  uses: number;
  created_by: string;
  created_at: Date;
};

const toInviteView = (i: InviteRow) => ({
  code: i.code,
  expiresAt: i.expires_at,
  maxUses: i.max_uses,
  uses: i.uses,
  createdBy: i.created_by,
  createdAt: i.created_at,
});

export async function listInvites(ctx: AppContext, userId: string, circleId: string, limit: number, cursor?: string) {
  await requireMember(ctx.db, circleId, userId, MANAGERS);
  const after = decodeCursor(cursor, ['number', 'string']) as [number, string] | null;
  const rows = await repo.listInvites(ctx.db, circleId, limit, after);
  const page = pageOf(rows, limit, (r) => [r.cursor_ts, r.code]);
  return { items: page.items.map(toInviteView), nextCursor: page.nextCursor };
}

/**
 * Revokes an invite: from then on it admits nobody (joining with it is 409 invite_revoked), and it
 * leaves the invite list. Revoking it again changes nothing and is answered the same; a code this
 * circle never issued is 404.
 */
export async function revokeInvite(ctx: AppContext, userId: string, circleId: string, code: string): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    await requireRole(trx, circleId, userId, MANAGERS);
    const revoked = await repo.revokeInvite(trx, circleId, code);
    if (!revoked) {
      if (!(await repo.findInvite(trx, circleId, code))) throw notFound('invite');
      return;
    }
    // The code itself stays out of the event: the activity feed is read by every member.
    await recordEvent(trx, {
      circleId,
      type: 'invite.revoked',
      actorId: userId,
      payload: { createdBy: revoked.created_by, createdAt: revoked.created_at, uses: revoked.uses },
    });
  });
}

const alreadyMember = () => conflict('already_member', 'You are already a member of this circle.');

/**
 * Joins a circle. Open circles need no code. An invite-only circle is told apart from one that
 * does not exist only by a code it issued: without a code, or with one it never issued (made up,
 * or another circle's), the answer is the outsider's 404 circle_not_found, the same bytes as for
 * an unknown circle id. A real code that was revoked, expired or ran out says so (409): its holder
 * was given it. A current member is told so (409 already_member) before any code is looked at:
 * they know the circle exists, and a code of theirs is never spent.
 */
export async function joinCircle(ctx: AppContext, userId: string, circleId: string, inviteCode?: string) {
  return ctx.db
    .transaction()
    .execute(async (trx) => {
      const circle = await repo.findCircle(trx, circleId);
      if (!circle) throw notFound('circle');
      if (await repo.findMembership(trx, circleId, userId)) throw alreadyMember();
      if (circle.join_policy === 'invite' || inviteCode !== undefined) {
        if (inviteCode === undefined) throw notFound('circle');
        const used = await repo.useInvite(trx, circleId, inviteCode);
        if (!used) {
          const invite = await repo.findInvite(trx, circleId, inviteCode);
          // An open circle's existence is no secret (anyone may join it), so its answer can be precise.
          if (!invite) throw notFound(circle.join_policy === 'invite' ? 'circle' : 'invite');
          if (invite.revoked_at) throw conflict('invite_revoked', 'This invite was revoked by the circle.');
          if (invite.expired) throw conflict('invite_expired', 'This invite has expired.');
          throw conflict('invite_used_up', 'This invite has been used as often as it allows.');
        }
      }
      // Nothing again when a join of the same caller committed since the check above.
      const joined = await repo.upsertMember(trx, circleId, userId);
      if (!joined) throw alreadyMember();
      await recordEvent(trx, { circleId, type: 'member.joined', subjectId: userId, actorId: userId });
      return toMemberView(circleId, await repo.readMember(trx, circleId, userId));
    })
    .catch(unknownAccount);
}

export async function listMembers(ctx: AppContext, userId: string, circleId: string, limit: number, cursor?: string) {
  await requireMember(ctx.db, circleId, userId);
  const after = decodeCursor(cursor, ['number', 'uuid']) as [number, string] | null;
  const rows = await repo.listMembers(ctx.db, circleId, limit, after);
  const page = pageOf(rows, limit, (r) => [r.cursor_ts, r.user_id]);
  return { items: page.items.map((m) => toMemberView(circleId, m)), nextCursor: page.nextCursor };
}

/**
 * Changes a member's role; owner only. Making someone the owner transfers ownership: the previous
 * owner becomes an admin in the same transaction, so a circle always has exactly one owner. Every
 * role that changes has its `member.role_changed` event, the previous owner's included.
 */
export async function changeRole(ctx: AppContext, actorId: string, circleId: string, targetId: string, role: Role) {
  return ctx.db.transaction().execute(async (trx) => {
    const locked = await repo.lockMembers(trx, circleId, [...new Set([actorId, targetId])]);
    const actorRole = locked.find((m) => m.user_id === actorId)?.role;
    if (!actorRole) throw notFound('circle');
    if (actorRole !== 'owner') throw forbidden('Only the owner can change roles.');
    const target = locked.find((m) => m.user_id === targetId);
    if (!target) throw notFound('member');
    if (targetId === actorId) {
      if (role !== 'owner')
        throw conflict('owner_required', 'A circle always has one owner: make someone else the owner first.');
    } else if (role === 'owner') {
      await repo.setRole(trx, circleId, actorId, 'admin');
      await repo.setRole(trx, circleId, targetId, 'owner');
      await repo.setOwner(trx, circleId, targetId);
    } else if (target.role !== role) {
      await repo.setRole(trx, circleId, targetId, role);
    }
    const changed: NewEvent[] = [];
    if (target.role !== role)
      changed.push({
        circleId,
        type: 'member.role_changed',
        subjectId: targetId,
        actorId,
        payload: { from: target.role, to: role },
      });
    if (role === 'owner' && targetId !== actorId)
      changed.push({
        circleId,
        type: 'member.role_changed',
        subjectId: actorId,
        actorId,
        payload: { from: 'owner', to: 'admin', newOwnerId: targetId },
      });
    await recordEvents(trx, changed);
    return toMemberView(circleId, await repo.readMember(trx, circleId, targetId));
  });
}

/**
 * Removes a member. Anyone may leave; admins may remove plain members; the owner may remove anyone
 * else. The owner cannot leave without handing ownership to someone first.
 */
export async function removeMember(
  ctx: AppContext,
  actorId: string,
  circleId: string,
  targetId: string,
): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    const locked = await repo.lockMembers(trx, circleId, [...new Set([actorId, targetId])]);
    const actorRole = locked.find((m) => m.user_id === actorId)?.role;
    if (!actorRole) throw notFound('circle');
    const target = locked.find((m) => m.user_id === targetId);
    if (!target) throw notFound('member');
    // Permission first: someone else trying to remove the owner is refused, not told to transfer.
    const allowed =
      actorId === targetId || actorRole === 'owner' || (actorRole === 'admin' && target.role === 'member');
    if (!allowed) throw forbidden('Your role does not allow removing this member.');
    if (target.role === 'owner')
      throw conflict('owner_cannot_leave', 'The owner must transfer ownership before leaving.');
    await repo.markLeft(trx, circleId, targetId);
    await recordEvent(trx, {
      circleId,
      type: 'member.left',
      subjectId: targetId,
      actorId,
      payload: { removed: actorId !== targetId },
    });
  });
}
