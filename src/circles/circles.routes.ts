import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problems } from '../http/schemas.js';
import {
  ChangeRoleBody,
  Circle,
  CircleList,
  CircleParams,
  CreateCircleBody,
  CreateInviteBody,
  Invite,
  InviteList,
  InviteParams,
  JoinBody,
  ListQuery,
  Member,
  MemberList,
  MemberParams,
  UpdateCircleBody,
} from './circles.schemas.js';
import * as circles from './circles.service.js';

export const circleRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['circles'];

  app.post(
    '/circles',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'createCircle',
        tags,
        summary: 'Create a circle (the caller becomes its owner)',
        body: CreateCircleBody,
        response: { 201: Circle, ...problems(400, 401, 409, 422) },
      },
    },
    async (request, reply) => reply.code(201).send(await circles.createCircle(app, request.user.sub, request.body)),
  );

  app.get(
    '/circles',
    {
      schema: {
        operationId: 'listMyCircles',
        tags,
        summary: 'Circles I belong to',
        querystring: ListQuery,
        response: { 200: CircleList, ...problems(400, 401) },
      },
    },
    async (request) => circles.listMyCircles(app, request.user.sub, request.query.limit ?? 50, request.query.cursor),
  );

  app.get(
    '/circles/:circleId',
    {
      schema: {
        operationId: 'getCircle',
        tags,
        summary: 'A circle I belong to',
        params: CircleParams,
        response: { 200: Circle, ...problems(400, 401, 404) },
      },
    },
    async (request) => circles.getCircle(app, request.user.sub, request.params.circleId),
  );

  app.patch(
    '/circles/:circleId',
    {
      schema: {
        operationId: 'updateCircle',
        tags,
        summary: "Change the circle's name, description, join policy or time zone (owner)",
        params: CircleParams,
        body: UpdateCircleBody,
        response: { 200: Circle, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => circles.updateCircle(app, request.user.sub, request.params.circleId, request.body),
  );

  app.post(
    '/circles/:circleId/invites',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'createInvite',
        tags,
        summary: 'Create an invite code (owner, admin)',
        params: CircleParams,
        body: CreateInviteBody,
        response: { 201: Invite, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(await circles.createInvite(app, request.user.sub, request.params.circleId, request.body ?? {})),
  );

  app.get(
    '/circles/:circleId/invites',
    {
      schema: {
        operationId: 'listInvites',
        tags,
        summary: "The circle's invites that still exist (owner, admin)",
        params: CircleParams,
        querystring: ListQuery,
        response: { 200: InviteList, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) =>
      circles.listInvites(
        app,
        request.user.sub,
        request.params.circleId,
        request.query.limit ?? 50,
        request.query.cursor,
      ),
  );

  app.delete(
    '/circles/:circleId/invites/:code',
    {
      schema: {
        operationId: 'revokeInvite',
        tags,
        summary: 'Revoke an invite: it admits nobody from now on (owner, admin)',
        params: InviteParams,
        response: {
          204: { type: 'null', description: 'Revoked (also when it already was)' },
          ...problems(400, 401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      await circles.revokeInvite(app, request.user.sub, request.params.circleId, request.params.code);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/circles/:circleId/members',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'joinCircle',
        tags,
        summary: 'Join a circle',
        params: CircleParams,
        body: JoinBody,
        response: { 201: Member, ...problems(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(await circles.joinCircle(app, request.user.sub, request.params.circleId, request.body?.inviteCode)),
  );

  app.get(
    '/circles/:circleId/members',
    {
      schema: {
        operationId: 'listMembers',
        tags,
        summary: 'Members of a circle',
        params: CircleParams,
        querystring: ListQuery,
        response: { 200: MemberList, ...problems(400, 401, 404) },
      },
    },
    async (request) =>
      circles.listMembers(
        app,
        request.user.sub,
        request.params.circleId,
        request.query.limit ?? 50,
        request.query.cursor,
      ),
  );

  app.patch(
    '/circles/:circleId/members/:userId',
    {
      schema: {
        operationId: 'changeMemberRole',
        tags,
        summary: "Change a member's role (owner)",
        params: MemberParams,
        body: ChangeRoleBody,
        response: { 200: Member, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request) =>
      circles.changeRole(app, request.user.sub, request.params.circleId, request.params.userId, request.body.role),
  );

  app.delete(
    '/circles/:circleId/members/:userId',
    {
      schema: {
        operationId: 'removeMember',
        tags,
        summary: 'Remove a member, or leave',
        params: MemberParams,
        response: { 204: { type: 'null', description: 'Removed' }, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      await circles.removeMember(app, request.user.sub, request.params.circleId, request.params.userId);
      return reply.code(204).send(null);
    },
  );
};
