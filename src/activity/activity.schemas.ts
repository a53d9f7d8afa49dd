import { Type } from 'typebox';
import { Id, Obj, Page, SnapshotPageQuery, Timestamp } from '../http/schemas.js';

const EventType = '[a-z][a-z_]*\\.[a-z][a-z_]*';

export const EventsQuery = Obj({
  types: Type.Optional(
    Type.String({
      pattern: `^${EventType}(,${EventType}){0,19}$`,
      maxLength: 600,
      description: 'Only these event types, comma-separated (up to 20), e.g. review.created,claim.expired',
    }),
  ),
  ...SnapshotPageQuery,
});

export const EventItem = Type.Object(
  {
    id: Type.String({ description: 'Event id; ids grow with time' }),
    type: Type.String({ description: 'What happened, e.g. review.created, claim.expired, payout.credited' }),
    circleId: Type.Union([Id('Circle'), Type.Null()], { description: 'The circle it happened in' }),
    occurredAt: Timestamp('When it happened'),
    actor: Type.Union(
      [
        Type.Object(
          {
            userId: Id('Who did it'),
            handle: Type.Union([Type.String(), Type.Null()], { description: "The actor's handle" }),
            displayName: Type.Union([Type.String(), Type.Null()], { description: "The actor's display name" }),
          },
          { description: 'Who did it' },
        ),
        Type.Null(),
      ],
      { description: 'Who did it; null for what the service did on its own (expiry, auto-accept, reminders)' },
    ),
    subjectId: Type.Union([Type.String(), Type.Null()], {
      description: 'The object it is about (claim, task, review, settlement, member...)',
    }),
    recipientId: Type.Union([Id('Member'), Type.Null()], {
      description: 'The member it concerns, whose inbox shows it; null for circle-wide events',
    }),
    summary: Type.String({ description: 'One line of plain English saying what happened' }),
    data: Type.Record(Type.String(), Type.Unknown(), { description: 'The details the event carries, by type' }),
  },
  { description: 'An event' },
);

export const CircleEventPage = Page(EventItem, "The circle's events, newest first");
export const InboxPage = Page(EventItem, 'Events concerning the caller across their circles, newest first');
