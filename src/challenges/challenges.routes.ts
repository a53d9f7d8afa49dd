import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problems } from '../http/schemas.js';
import { CircleParams } from '../circles/circles.schemas.js';
import {
  CancelChallengeBody,
  Challenge,
  ChallengeDetail,
  ChallengeList,
  ChallengeListQuery,
  ChallengeParams,
  CheckinBody,
  CheckinList,
  CheckinListQuery,
  CheckinResult,
  CreateChallengeBody,
  EditChallengeBody,
  Leaderboard,
  LeaderboardQuery,
} from './challenges.schemas.js';
import { challengeLeaderboard } from './challenge-leaderboard.service.js';
import * as challenges from './challenges.service.js';
import * as checkins from './checkins.service.js';

export const challengeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['challenges'];

  app.post(
    '/circles/:circleId/challenges',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'createChallenge',
        tags,
        summary: 'Create a daily check-in challenge (owner, admin)',
        params: CircleParams,
        body: CreateChallengeBody,
        response: { 201: Challenge, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(await challenges.createChallenge(app, request.user.sub, request.params.circleId, request.body)),
  );

  app.get(
    '/circles/:circleId/challenges',
    {
      schema: {
        operationId: 'listCircleChallenges',
        tags,
        summary: "The circle's challenges, newest first",
        params: CircleParams,
        querystring: ChallengeListQuery,
        response: { 200: ChallengeList, ...problems(400, 401, 404) },
      },
    },
    async (request) =>
      challenges.listChallenges(
        app,
        request.user.sub,
        request.params.circleId,
        request.query.limit ?? 50,
        request.query.cursor,
      ),
  );

  app.get(
    '/challenges/:challengeId',
    {
      schema: {
        operationId: 'getChallenge',
        tags,
        summary: 'A challenge, with my progress in it',
        params: ChallengeParams,
        response: { 200: ChallengeDetail, ...problems(400, 401, 404) },
      },
    },
    async (request) => challenges.getChallenge(app, request.user.sub, request.params.challengeId),
  );

  app.patch(
    '/challenges/:challengeId',
    {
      schema: {
        operationId: 'updateChallenge',
        tags,
        summary: 'Edit a challenge: the rules only before its first day (owner, admin)',
        params: ChallengeParams,
        body: EditChallengeBody,
        response: { 200: Challenge, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request) => challenges.editChallenge(app, request.user.sub, request.params.challengeId, request.body),
  );

  app.post(
    '/challenges/:challengeId/cancel',
    {
      schema: {
        operationId: 'cancelChallenge',
        tags,
        summary: 'Cancel a challenge; check-ins made keep their points (owner, admin)',
        params: ChallengeParams,
        body: CancelChallengeBody,
        response: { 200: Challenge, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request) =>
      challenges.cancelChallenge(app, request.user.sub, request.params.challengeId, request.body?.reason),
  );

  app.post(
    '/challenges/:challengeId/checkins',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'checkIn',
        tags,
        summary: 'Check in for today, or make up a missed day with `date`',
        params: ChallengeParams,
        body: CheckinBody,
        response: { 201: CheckinResult, ...problems(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await checkins.checkIn(app, request.user.sub, request.params.challengeId, request.body)),
  );

  app.get(
    '/challenges/:challengeId/checkins',
    {
      schema: {
        operationId: 'listMyCheckins',
        tags,
        summary: 'My check-ins of a challenge, latest day first',
        params: ChallengeParams,
        querystring: CheckinListQuery,
        response: { 200: CheckinList, ...problems(400, 401, 404) },
      },
    },
    async (request) =>
      checkins.listMyCheckins(
        app,
        request.user.sub,
        request.params.challengeId,
        request.query.limit ?? 50,
        request.query.cursor,
      ),
  );

  app.get(
    '/challenges/:challengeId/leaderboard',
    {
      schema: {
        operationId: 'getChallengeLeaderboard',
        tags,
        summary: 'Members by check-ins, current or best streak; ?me=true for my own row',
        params: ChallengeParams,
        querystring: LeaderboardQuery,
        response: { 200: Leaderboard, ...problems(400, 401, 404) },
      },
    },
    async (request) => challengeLeaderboard(app, request.user.sub, request.params.challengeId, request.query),
  );
};
