import type { AppContext } from '../context.js';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { conflict, unauthorized, notFound } from '../errors.js';
import { isUniqueViolation } from '../infra/pg-errors.js';
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

/** Opening a session also needs the access-token signer: the API's JWT plugin. */
type SessionContext = AppContext & { jwt: { sign(payload: { sub: string }): string } };

async function issueTokens(ctx: SessionContext, userId: string, familyId: string = randomUUID()) {
  const refreshToken = randomBytes(32).toString('base64url');
  await repo.insertRefreshToken(ctx.db, {
    userId,
    familyId,
    hash: hashToken(refreshToken),
    ttlSeconds: ctx.config.refreshTokenTtlSeconds,
  });
  const accessToken = ctx.jwt.sign({ sub: userId });
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
  if (!(await verifyPassword(input.password, user.password_hash))) {
    throw unauthorized('invalid_credentials', 'Handle or password is wrong.');
  }
  return { user: toUserView(user), ...(await issueTokens(ctx, user.id)) };
}

/**
 * Rotates a refresh token: the presented one stops working and a new pair is issued in the same
 * family. Presenting an already-rotated token means it leaked (or a client misbehaves), so the
 * whole family is revoked and the legitimate holder must log in again.
 */
export async function refresh(ctx: SessionContext, refreshToken: string) {
  const hash = hashToken(refreshToken);
  const rotated = await repo.rotateRefreshToken(ctx.db, hash);
  if (!rotated) {
    const known = await repo.findRefreshToken(ctx.db, hash);
    if (known?.rotated_at) {
      await repo.revokeFamily(ctx.db, known.family_id);
      throw unauthorized(
        'refresh_token_reused',
        'This refresh token was already used; all sessions from it are revoked.',
      );
    }
    throw unauthorized('invalid_refresh_token', 'The refresh token is not valid or has expired.');
  }
  const user = await repo.findUserById(ctx.db, rotated.user_id);
  if (!user) throw unauthorized('invalid_refresh_token', 'The refresh token is not valid or has expired.');
  return { user: toUserView(user), ...(await issueTokens(ctx, user.id, rotated.family_id)) };
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
