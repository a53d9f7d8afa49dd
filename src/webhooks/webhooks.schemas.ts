import { Type } from 'typebox';
import { Id, Obj, Page, PageQuery, Timestamp } from '../http/schemas.js';

const Url = Type.String({
  minLength: 1,
  maxLength: 2000,
  description:
    'Where deliveries are POSTed: http or https; hosts that are or resolve to loopback, private, link-local or other non-public addresses are refused',
});
const Events = Type.Array(
  Type.String({ minLength: 1, maxLength: 64, description: 'An event type, e.g. task.completed, or * for all' }),
  { minItems: 1, maxItems: 50, description: 'Event types to receive (1-50), or ["*"] for every type' },
);
const Description = Type.String({ maxLength: 500, description: 'What the endpoint is for, up to 500 characters' });

export const WebhookParams = Obj({ circleId: Id('Circle id'), webhookId: Id('Webhook id') });
export const DeliveryParams = Obj({
  circleId: Id('Circle id'),
  webhookId: Id('Webhook id'),
  deliveryId: Id('Delivery (attempt) id'),
});

export const CreateWebhookBody = Obj(
  { url: Url, events: Events, description: Type.Optional(Description) },
  'A webhook endpoint',
  {
    examples: [
      {
        url: 'https://bot.example.cn/circle-actions/hooks',
        events: ['claim.created', 'submission.created', 'settlement.completed'],
        description: '飞书群机器人：新认领、新提交和结算通知',
      },
    ],
  },
);

export const EditWebhookBody = Obj(
  {
    url: Type.Optional(Url),
    events: Type.Optional(Events),
    description: Type.Optional(Description),
    enabled: Type.Optional(
      Type.Boolean({ description: 'false stops deliveries; true re-enables an endpoint, e.g. after auto-disable' }),
    ),
  },
  'Changes to a webhook endpoint; fields left out stay',
  { examples: [{ events: ['*'], enabled: true }] },
);

const webhookProperties = {
  id: Id('Webhook id'),
  circleId: Id('Circle'),
  url: Type.String({ description: 'Delivery URL' }),
  events: Type.Array(Type.String(), { description: 'Subscribed event types, or ["*"]' }),
  description: Type.String({ description: 'Description' }),
  enabled: Type.Boolean({ description: 'Whether deliveries are made' }),
  disabledAt: Type.Union([Timestamp('When it was disabled'), Type.Null()], { description: 'When it was disabled' }),
  disabledReason: Type.Union([Type.Literal('failing'), Type.Literal('manual'), Type.Null()], {
    description: 'failing (too many failed messages in a row) or manual',
  }),
  failureStreak: Type.Integer({ description: 'Messages failed in a row since the last success' }),
  previousSecretExpiresAt: Type.Union([Timestamp('Until when'), Type.Null()], {
    description:
      'Until when secrets retired by rotation still sign deliveries beside the current one: 24 hours after the last rotation (each retired secret signs for 24 hours, at most five at once)',
  }),
  createdBy: Id('Who created it'),
  createdAt: Timestamp('Created'),
  updatedAt: Timestamp('Last changed'),
};

export const Webhook = Type.Object(webhookProperties, { description: 'A webhook endpoint (never its secret)' });

export const WebhookWithSecret = Type.Object(
  {
    ...webhookProperties,
    secret: Type.String({
      description: 'The signing secret (whsec_ + base64), shown only now: verify deliveries with it',
    }),
  },
  { description: 'A webhook endpoint with its signing secret, shown once' },
);

export const WebhookList = Page(Webhook, "The circle's webhook endpoints, newest first");
export const WebhookListQuery = Obj({ ...PageQuery });

export const Delivery = Type.Object(
  {
    id: Id('Delivery (attempt) id'),
    webhookId: Id('Webhook'),
    messageId: Type.String({ description: 'The message, sent as webhook-id (the same on every attempt)' }),
    eventId: Type.Integer({ description: 'The event delivered' }),
    eventType: Type.String({ description: 'Its type' }),
    attempt: Type.Integer({ description: 'Attempt number of the message, from 1' }),
    trigger: Type.Union([Type.Literal('automatic'), Type.Literal('redelivery')], {
      description: 'automatic (first try or retry) or redelivery (asked for by hand)',
    }),
    status: Type.Union([Type.Literal('succeeded'), Type.Literal('failed')], { description: 'Outcome in short' }),
    outcome: Type.Union(
      [
        Type.Literal('succeeded'),
        Type.Literal('http_error'),
        Type.Literal('timeout'),
        Type.Literal('refused'),
        Type.Literal('network_error'),
      ],
      {
        description:
          'succeeded (2xx), http_error (other status), timeout, refused (address not allowed), network_error',
      },
    ),
    responseStatus: Type.Union([Type.Integer(), Type.Null()], { description: "The receiver's HTTP status, if any" }),
    durationMs: Type.Integer({ description: 'How long the attempt took, in milliseconds' }),
    error: Type.Union([Type.String(), Type.Null()], { description: 'What went wrong, if it failed' }),
    startedAt: Timestamp('When the attempt started'),
    finishedAt: Timestamp('When it ended'),
  },
  { description: 'One delivery attempt' },
);

export const DeliveryList = Page(Delivery, "The webhook's delivery attempts, newest first");
export const DeliveryListQuery = Obj({ ...PageQuery });

export const Redelivery = Type.Object(
  {
    webhookId: Id('Webhook'),
    messageId: Type.String({ description: 'The message being sent again (same webhook-id)' }),
    attempt: Type.Integer({ description: 'The attempt number it will be' }),
    status: Type.Literal('pending', { description: 'Queued' }),
  },
  { description: 'A redelivery, queued' },
);
