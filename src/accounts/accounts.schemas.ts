import { Type } from 'typebox';
import { Id, Obj, Timestamp } from '../http/schemas.js';

export const Handle = Type.String({
  minLength: 3,
  maxLength: 30,
  pattern: '^[A-Za-z0-9_.-]+$',
  description: 'Unique login name, 3-30 of A-Z a-z 0-9 _ . - (case-insensitively unique)',
});
export const Password = Type.String({ minLength: 8, maxLength: 200, description: 'Password, 8-200 characters' });
export const DisplayName = Type.String({
  minLength: 1,
  maxLength: 60,
  pattern: '^[^\\p{Cc}]+$',
  description: 'Name shown to other members, 1-60 characters',
});
export const Skill = Type.String({
  minLength: 1,
  maxLength: 40,
  pattern: '^[\\p{L}\\p{N}][\\p{L}\\p{N} +#._-]*$',
  description: 'Skill tag, e.g. "writing"; compared case-insensitively',
});
export const Skills = Type.Array(Skill, { maxItems: 30, description: 'Skill tags (at most 30)' });

export const User = Type.Object(
  {
    id: Id('User id'),
    handle: Type.String({ description: 'Login name' }),
    displayName: Type.String({ description: 'Name shown to other members' }),
    skills: Type.Array(Type.String(), { description: 'Skill tags, lower-cased' }),
    createdAt: Timestamp('When the account was created'),
  },
  { description: 'A user profile' },
);

export const Session = Type.Object(
  {
    user: User,
    accessToken: Type.String({ description: 'Short-lived JWT for Authorization: Bearer' }),
    refreshToken: Type.String({ description: 'Single-use token to obtain a new pair from /v1/auth/refresh' }),
  },
  { description: 'The user and a fresh token pair' },
);

export const RegisterBody = Obj(
  { handle: Handle, password: Password, displayName: Type.Optional(DisplayName) },
  'New account',
  { examples: [{ handle: 'lin_reads', password: 'correct horse battery', displayName: '林小读' }] },
);
export const LoginBody = Obj(
  {
    handle: Type.String({ minLength: 1, maxLength: 30, description: 'Login name' }),
    password: Type.String({ minLength: 1, maxLength: 200, description: 'Password' }),
  },
  'Credentials',
  { examples: [{ handle: 'lin_reads', password: 'correct horse battery' }] },
);
export const RefreshBody = Obj(
  { refreshToken: Type.String({ minLength: 1, maxLength: 200, description: 'The current refresh token' }) },
  'Refresh request',
  { examples: [{ refreshToken: 'rt_2f9c1e7a5b3d4c6e8a0b1d2f3e4c5a6b' }] },
);
export const ProfilePatch = Obj(
  { displayName: Type.Optional(DisplayName), skills: Type.Optional(Skills) },
  'Profile changes',
  { examples: [{ displayName: '林小读', skills: ['翻译', '校对', 'writing'] }] },
);
export const LogoutBody = Obj(
  {
    refreshToken: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'A refresh token of the session to end; its whole family stops working',
    }),
  },
  'Logout request',
  { examples: [{ refreshToken: 'rt_2f9c1e7a5b3d4c6e8a0b1d2f3e4c5a6b' }] },
);
export const ChangePasswordBody = Obj(
  {
    currentPassword: Type.String({ minLength: 1, maxLength: 200, description: 'The password in use now' }),
    newPassword: Password,
  },
  'Password change',
  { examples: [{ currentPassword: 'correct horse battery', newPassword: 'a longer passphrase 2026' }] },
);
