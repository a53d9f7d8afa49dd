import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problems } from '../http/schemas.js';
import { authRateLimit } from '../http/rate-limit.js';
import {
  ChangePasswordBody,
  LoginBody,
  LogoutBody,
  ProfilePatch,
  RefreshBody,
  RegisterBody,
  Session,
  User,
} from './accounts.schemas.js';
import * as accounts from './accounts.service.js';

export const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['accounts'];
  const authLimit = authRateLimit(app);

  app.post(
    '/auth/register',
    {
      config: { rateLimit: false },
      preHandler: authLimit,
      schema: {
        operationId: 'register',
        tags,
        security: [],
        summary: 'Create an account',
        body: RegisterBody,
        response: { 201: Session, ...problems(400, 409) },
      },
    },
    async (request, reply) => reply.code(201).send(await accounts.register(app, request.body)),
  );

  app.post(
    '/auth/login',
    {
      config: { rateLimit: false },
      preHandler: authLimit,
      schema: {
        operationId: 'login',
        tags,
        security: [],
        summary: 'Log in with handle and password',
        body: LoginBody,
        response: { 200: Session, ...problems(400, 401) },
      },
    },
    async (request) => accounts.login(app, request.body),
  );

  app.post(
    '/auth/refresh',
    {
      config: { rateLimit: false },
      preHandler: authLimit,
      schema: {
        operationId: 'refreshSession',
        tags,
        security: [],
        summary: 'Exchange a refresh token for a new pair',
        body: RefreshBody,
        response: { 200: Session, ...problems(400, 401) },
      },
    },
    async (request) => accounts.refresh(app, request.body.refreshToken),
  );
};

export const meRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['accounts'];

  app.get(
    '/me',
    {
      schema: { operationId: 'getMyProfile', tags, summary: 'My profile', response: { 200: User, ...problems(401) } },
    },
    async (request) => accounts.getProfile(app, request.user.sub),
  );

  app.patch(
    '/me',
    {
      schema: {
        operationId: 'updateMyProfile',
        tags,
        summary: 'Update my profile',
        body: ProfilePatch,
        response: { 200: User, ...problems(400, 401) },
      },
    },
    async (request) => accounts.updateProfile(app, request.user.sub, request.body),
  );

  app.post(
    '/auth/logout',
    {
      schema: {
        operationId: 'logout',
        tags,
        summary: 'End a session: its refresh token and every token rotated from it stop working',
        body: LogoutBody,
        response: {
          204: { type: 'null', description: 'Logged out (also when the token was already invalid)' },
          ...problems(400, 401),
        },
      },
    },
    async (request, reply) => {
      await accounts.logout(app, request.user.sub, request.body.refreshToken);
      return reply.code(204).send(null);
    },
  );

  // Guessing the current password is credential guessing: it spends the per-IP login budget too,
  // and a budget of the same size per user, so a stolen access token used from many addresses
  // gets no more guesses than one address would.
  app.post(
    '/me/password',
    {
      preHandler: authRateLimit(app, { perUser: true }),
      schema: {
        operationId: 'changeMyPassword',
        tags,
        summary: "Change my password; every other session's refresh tokens are revoked",
        body: ChangePasswordBody,
        response: {
          204: { type: 'null', description: 'Changed; this session stays signed in' },
          ...problems(400, 401, 403),
        },
      },
    },
    async (request, reply) => {
      await accounts.changePassword(app, request.user.sub, request.user.sid, request.body);
      return reply.code(204).send(null);
    },
  );
};
