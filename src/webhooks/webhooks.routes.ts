import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problems } from '../http/schemas.js';
import { CircleParams } from '../circles/circles.schemas.js';
import {
  CreateWebhookBody,
  DeliveryList,
  DeliveryListQuery,
  DeliveryParams,
  EditWebhookBody,
  Redelivery,
  Webhook,
  WebhookList,
  WebhookListQuery,
  WebhookParams,
  WebhookWithSecret,
} from './webhooks.schemas.js';
import * as webhooks from './webhooks.service.js';

export const webhookRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['webhooks'];

  app.post(
    '/circles/:circleId/webhooks',
    {
      config: { idempotent: true },
      schema: {
        tags,
        operationId: 'createWebhook',
        summary: 'Add a webhook endpoint; the answer shows its signing secret, once (owner, admin)',
        params: CircleParams,
        body: CreateWebhookBody,
        response: { 201: WebhookWithSecret, ...problems(400, 401, 403, 404, 422) },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await webhooks.createWebhook(app, request.user.sub, request.params.circleId, request.body)),
  );

  app.get(
    '/circles/:circleId/webhooks',
    {
      schema: {
        tags,
        operationId: 'listWebhooks',
        summary: "The circle's webhook endpoints, newest first (owner, admin)",
        params: CircleParams,
        querystring: WebhookListQuery,
        response: { 200: WebhookList, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) =>
      webhooks.listWebhooks(
        app,
        request.user.sub,
        request.params.circleId,
        request.query.limit ?? 50,
        request.query.cursor,
      ),
  );

  app.patch(
    '/circles/:circleId/webhooks/:webhookId',
    {
      schema: {
        tags,
        operationId: 'updateWebhook',
        summary: 'Change a webhook endpoint; enabled: true re-enables it after it was disabled (owner, admin)',
        params: WebhookParams,
        body: EditWebhookBody,
        response: { 200: Webhook, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) =>
      webhooks.updateWebhook(app, request.user.sub, request.params.circleId, request.params.webhookId, request.body),
  );

  app.delete(
    '/circles/:circleId/webhooks/:webhookId',
    {
      schema: {
        tags,
        operationId: 'deleteWebhook',
        summary: 'Delete a webhook endpoint and its delivery log (owner, admin)',
        params: WebhookParams,
        response: { 204: { type: 'null', description: 'Deleted' }, ...problems(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await webhooks.deleteWebhook(app, request.user.sub, request.params.circleId, request.params.webhookId);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/circles/:circleId/webhooks/:webhookId/rotate-secret',
    {
      schema: {
        tags,
        operationId: 'rotateWebhookSecret',
        summary: 'A new signing secret, shown once; the old one also signs for 24 hours (owner, admin)',
        params: WebhookParams,
        response: { 200: WebhookWithSecret, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) => webhooks.rotateSecret(app, request.user.sub, request.params.circleId, request.params.webhookId),
  );

  app.get(
    '/circles/:circleId/webhooks/:webhookId/deliveries',
    {
      schema: {
        tags,
        operationId: 'listWebhookDeliveries',
        summary: 'The delivery log: every attempt, newest first (owner, admin)',
        params: WebhookParams,
        querystring: DeliveryListQuery,
        response: { 200: DeliveryList, ...problems(400, 401, 403, 404) },
      },
    },
    async (request) =>
      webhooks.listDeliveries(
        app,
        request.user.sub,
        request.params.circleId,
        request.params.webhookId,
        request.query.limit ?? 50,
        request.query.cursor,
      ),
  );

  app.post(
    '/circles/:circleId/webhooks/:webhookId/deliveries/:deliveryId/redeliver',
    {
      schema: {
        tags,
        operationId: 'redeliverWebhookMessage',
        summary: "Send a delivery's message once more, with the same webhook-id (owner, admin)",
        params: DeliveryParams,
        response: { 202: Redelivery, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) =>
      reply
        .code(202)
        .send(
          await webhooks.redeliver(
            app,
            request.user.sub,
            request.params.circleId,
            request.params.webhookId,
            request.params.deliveryId,
          ),
        ),
  );
};
