import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problems } from '../http/schemas.js';
import { ClaimParams } from '../claims/claims.schemas.js';
import { CircleParams } from '../circles/circles.schemas.js';
import {
  Review,
  ReviewBody,
  ReviewQueue,
  ReviewQueueQuery,
  SubmissionHistory,
  SubmitBody,
  Submission,
} from './reviews.schemas.js';
import * as reviews from './reviews.service.js';

export const reviewRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['reviews'];

  app.post(
    '/claims/:claimId/submissions',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'submitWork',
        tags,
        summary: 'Submit work for my claim',
        params: ClaimParams,
        body: SubmitBody,
        response: { 201: Submission, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await reviews.submitWork(app, request.user.sub, request.params.claimId, request.body)),
  );

  app.get(
    '/claims/:claimId/submissions',
    {
      schema: {
        operationId: 'listSubmissions',
        tags,
        summary: "Every revision of a claim's work and its reviews (claimant, owner, admin)",
        params: ClaimParams,
        response: { 200: SubmissionHistory, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => reviews.listSubmissions(app, request.user.sub, request.params.claimId),
  );

  app.post(
    '/claims/:claimId/reviews',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'reviewSubmission',
        tags,
        summary: 'Review submitted work (owner, admin; never your own)',
        params: ClaimParams,
        body: ReviewBody,
        response: { 201: Review, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await reviews.reviewClaim(app, request.user.sub, request.params.claimId, request.body)),
  );

  app.get(
    '/circles/:circleId/review-queue',
    {
      schema: {
        operationId: 'listReviewQueue',
        tags,
        summary: 'Work waiting for review in a circle, oldest submission first (owner, admin)',
        params: CircleParams,
        querystring: ReviewQueueQuery,
        response: { 200: ReviewQueue, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => reviews.listReviewQueue(app, request.user.sub, request.params.circleId, request.query),
  );
};
