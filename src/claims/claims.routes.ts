import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ProjectParams, problems } from '../http/schemas.js';
import { TaskParams } from '../tasks/tasks.schemas.js';
import {
  Claim,
  ClaimList,
  ClaimNextBody,
  ClaimParams,
  ExtendBody,
  MyClaimsQuery,
  ProjectClaimList,
  ProjectClaimsQuery,
  RevokeBody,
  TaskClaimList,
  TaskClaimsQuery,
} from './claims.schemas.js';
import * as claims from './claims.service.js';

export const claimRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['claims'];

  app.post(
    '/tasks/:taskId/claims',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'claimTask',
        tags,
        summary: 'Claim a task under a lease',
        params: TaskParams,
        response: { 201: Claim, ...problems(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await claims.claimTask(app, request.user.sub, request.params.taskId)),
  );

  app.post(
    '/projects/:projectId/claims/next',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'claimNextTask',
        tags,
        summary: 'Claim the best claimable task for me',
        params: ProjectParams,
        body: ClaimNextBody,
        response: { 201: Claim, ...problems(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(await claims.claimNextTask(app, request.user.sub, request.params.projectId, request.body?.skills)),
  );

  app.get(
    '/me/claims',
    {
      schema: {
        operationId: 'listMyClaims',
        tags,
        summary: 'My claims',
        querystring: MyClaimsQuery,
        response: { 200: ClaimList, ...problems(400, 401) },
      },
    },
    async (request) => claims.listMyClaims(app, request.user.sub, request.query),
  );

  app.get(
    '/projects/:projectId/claims',
    {
      schema: {
        operationId: 'listProjectClaims',
        tags,
        summary: "A project's claims (owner, admin: everyone's; member: their own)",
        params: ProjectParams,
        querystring: ProjectClaimsQuery,
        response: { 200: ProjectClaimList, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => claims.listProjectClaims(app, request.user.sub, request.params.projectId, request.query),
  );

  app.get(
    '/tasks/:taskId/claims',
    {
      schema: {
        operationId: 'listTaskClaims',
        tags,
        summary: "A task's claims: who holds it, who did it (owner, admin)",
        params: TaskParams,
        querystring: TaskClaimsQuery,
        response: { 200: TaskClaimList, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => claims.listTaskClaims(app, request.user.sub, request.params.taskId, request.query),
  );

  app.get(
    '/claims/:claimId',
    {
      schema: {
        operationId: 'getClaim',
        tags,
        summary: 'A claim (claimant, owner, admin)',
        params: ClaimParams,
        response: { 200: Claim, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => claims.getClaim(app, request.user.sub, request.params.claimId),
  );

  app.post(
    '/claims/:claimId/extend',
    {
      schema: {
        operationId: 'extendClaim',
        tags,
        summary: 'Extend my lease (heartbeat)',
        params: ClaimParams,
        body: ExtendBody,
        response: { 200: Claim, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request) => claims.extendClaim(app, request.user.sub, request.params.claimId, request.body?.seconds),
  );

  app.post(
    '/claims/:claimId/release',
    {
      schema: {
        operationId: 'releaseClaim',
        tags,
        summary: 'Give the task back before the lease ends',
        params: ClaimParams,
        response: { 200: Claim, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request) => claims.releaseClaim(app, request.user.sub, request.params.claimId),
  );

  app.post(
    '/claims/:claimId/revoke',
    {
      schema: {
        operationId: 'revokeClaim',
        tags,
        summary: "Revoke someone's claim, with a reason (owner, admin)",
        params: ClaimParams,
        body: RevokeBody,
        response: { 200: Claim, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request) => claims.revokeClaim(app, request.user.sub, request.params.claimId, request.body.reason),
  );
};
