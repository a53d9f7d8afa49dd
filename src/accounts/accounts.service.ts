import type { AppContext } from '../context.js';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { DomainError, conflict, unauthorized, notFound } from '../errors.js';
import { recordEvent } from '../events/events.repository.js';
import { isUniqueViolation } from '../infra/pg-errors.js';
import type { Executor } from '../infra/db.js';
import { hashPassword, verifyPassword } from './passwords.js';
import * as repo from './accounts.repository.js';
import { normalizeSkills } from './skills.js';

export interface UserView {
  id: string;
  handle: string;
  displayName: string;
  skills: string[];
  createdAt: Date;
}

type UserRow = { id: string; handle: string; display_name: string; skills: string[]; created_at: Date };

export const toUserView = (u: UserRow): UserView => ({
  id: u.id,
  handle: u.handle,
  displayName: u.display_name,
  skills: u.skills,
  createdAt: u.created_at,
});

const hashToken = (token: string) => createHash('sha256').update(token).digest();

// Verified against when the handle is unknown, so a login takes as long whether or not it exists.
let decoyHash: Promise<string> | undefined;

/**
 * Opening a session also needs the access-token signer: the API's JWT plugin. Access tokens carry
 * their login's refresh-token family as `sid`, so a request can say which session it comes from
 * (a password change keeps the caller's own session and ends the others).
 */
type SessionContext = AppContext & { jwt: { sign(payload: { sub: string; sid: string }): string } };

async function issueTokens(
  ctx: SessionContext,
  userId: string,
  familyId: string = randomUUID(),
  db: Executor = ctx.db,
) {
  const refreshToken = randomBytes(32).toString('base64url');
  await repo.insertRefreshToken(db, {
    userId,
    familyId,
    hash: hashToken(refreshToken),
    ttlSeconds: ctx.config.refreshTokenTtlSeconds,
  });
  const accessToken = ctx.jwt.sign({ sub: userId, sid: familyId });
  return { accessToken, refreshToken };
}

export async function register(ctx: SessionContext, input: { handle: string; password: string; displayName?: string }) {
  const passwordHash = await hashPassword(input.password, ctx.config.passwordHashCost);
  let user: UserRow;
  try {
    user = await repo.insertUser(ctx.db, {
      handle: input.handle,
      passwordHash,
      displayName: input.displayName ?? input.handle,
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict('handle_taken', `The handle "${input.handle}" is taken.`);
    throw err;
  }
  return { user: toUserView(user), ...(await issueTokens(ctx, user.id)) };
}

export async function login(ctx: SessionContext, input: { handle: string; password: string }) {
  const user = await repo.findUserByHandle(ctx.db, input.handle);
  if (!user) {
    decoyHash ??= hashPassword('decoy password', ctx.config.passwordHashCost);
    await verifyPassword(input.password, await decoyHash);
    throw unauthorized('invalid_credentials', 'Handle or password is wrong.');
  }
  const invalid = () => unauthorized('invalid_credentials', 'Handle or password is wrong.');
  if (!(await verifyPassword(input.password, user.password_hash))) throw invalid();
  // The password is checked outside any lock (scrypt takes about 100 ms). A password change that
  // commits meanwhile revokes every session stored so far, but not the one this login is about to
  // store: whoever knew the old password would keep a session. So the session is stored under the
  // user's session lock, and only if the hash is still the one verified.
  const tokens = await ctx.db.transaction().execute(async (trx) => {
    await repo.lockSessions(trx, user.id);
    if ((await repo.findPasswordHash(trx, user.id)) !== user.password_hash) return undefined;
    return issueTokens(ctx, user.id, undefined, trx);
  });
  if (!tokens) throw invalid();
  return { user: toUserView(user), ...tokens };
}

/**
 * Rotates a refresh token: the presented one stops working and a new pair is issued in the same
 * family. Presenting an already-rotated token means it leaked (or a client misbehaves), so the
 * whole family is revoked and the legitimate holder must log in again.
 */
export async function refresh(ctx: SessionContext, refreshToken: string) {
  const hash = hashToken(refreshToken);
  // Spending the old token and storing the new one commit together: a rotation cut off between
  // them would leave the client holding a spent token, and its retry would revoke the family.
  const outcome = await ctx.db.transaction().execute(async (trx) => {
    const userId = await repo.lockSessionsOfToken(trx, hash);
    if (!userId) return 'invalid' as const;
    const rotated = await repo.rotateRefreshToken(trx, hash);
    if (!rotated) {
      const known = await repo.findRefreshToken(trx, hash);
      if (!known?.rotated_at) return 'invalid' as const;
      if (await repo.revokeFamily(trx, known.family_id)) {
        await recordEvent(trx, {
          circleId: null,
          type: 'session.ended',
          subjectId: userId,
          actorId: userId,
          payload: { reason: 'refresh_token_reused' },
        });
      }
      return 'reused' as const;
    }
    const user = await repo.findUserById(trx, rotated.user_id);
    if (!user) return 'invalid' as const;
    return { user: toUserView(user), ...(await issueTokens(ctx, user.id, rotated.family_id, trx)) };
  });
  if (outcome === 'reused') {
    throw unauthorized(
      'refresh_token_reused',
      'This refresh token was already used; all sessions from it are revoked.',
    );
  }
  if (outcome === 'invalid') {
    throw unauthorized('invalid_refresh_token', 'The refresh token is not valid or has expired.');
  }
  return outcome;
}

/**
 * Ends the session a refresh token belongs to: its whole family is revoked, so neither it nor any
 * token rotated from it works again. Idempotent and discreet: a token that is unknown, already
 * revoked or another user's changes nothing and is answered the same way.
 */
export async function logout(ctx: AppContext, userId: string, refreshToken: string): Promise<void> {
  await ctx.db.transaction().execute(async (trx) => {
    await repo.lockSessions(trx, userId);
    const familyId = await repo.revokeFamilyOfToken(trx, userId, hashToken(refreshToken));
    if (!familyId) return;
    await recordEvent(trx, { circleId: null, type: 'session.ended', subjectId: userId, actorId: userId });
  });
}

/**
 * Changes the password after checking the current one, and revokes every refresh token except the
 * caller's own session (the family named by the access token's `sid`; an access token without one
 * keeps no session). A wrong current password is a 403, not a 401: the access token is fine, and a
 * 401 would send clients to refresh and retry.
 */
export async function changePassword(
  ctx: AppContext,
  userId: string,
  sessionId: string | undefined,
  input: { currentPassword: string; newPassword: string },
): Promise<void> {
  const stored = await repo.findPasswordHash(ctx.db, userId);
  if (!stored) throw unauthorized('invalid_token', 'The account this access token was issued to does not exist.');
  const wrong = () => new DomainError('forbidden', 'invalid_current_password', 'The current password is wrong.');
  if (!(await verifyPassword(input.currentPassword, stored))) throw wrong();
  const newHash = await hashPassword(input.newPassword, ctx.config.passwordHashCost);
  await ctx.db.transaction().execute(async (trx) => {
    // Changed by a concurrent request since it was verified: the password given is no longer current.
    // Its UPDATE takes the user's row, the lock session changes take turns on (repo.lockSessions),
    // so a refresh in flight either commits first and has its new token revoked below, or waits
    // and finds its family revoked.
    if (!(await repo.replacePasswordHash(trx, userId, stored, newHash))) throw wrong();
    const revokedSessions = await repo.revokeFamiliesExcept(trx, userId, sessionId ?? null);
    await recordEvent(trx, {
      circleId: null,
      type: 'user.password_changed',
      subjectId: userId,
      actorId: userId,
      payload: { revokedSessions },
    });
  });
}

export async function getProfile(ctx: AppContext, userId: string): Promise<UserView> {
  const user = await repo.findUserById(ctx.db, userId);
  if (!user) throw notFound('user');
  return toUserView(user);
}

export async function updateProfile(
  ctx: AppContext,
  userId: string,
  input: { displayName?: string; skills?: string[] },
) {
  const changes: { display_name?: string; skills?: string[] } = {};
  if (input.displayName !== undefined) changes.display_name = input.displayName;
  if (input.skills !== undefined) changes.skills = normalizeSkills(input.skills);
  if (Object.keys(changes).length === 0) return getProfile(ctx, userId);
  const user = await repo.updateUser(ctx.db, userId, changes);
  if (!user) throw notFound('user');
  return toUserView(user);
}
