import { sql } from 'kysely';
import type { Db } from '../infra/postgres.js';
import { visibleIn } from '../infra/snapshots.js';
import { UUID } from '../infra/uuid.js';

/** An event as the feed and the inbox read it: the row and the names its summary needs. */
export interface EventRow {
  id: number;
  circle_id: string | null;
  type: string;
  subject_id: string | null;
  actor_id: string | null;
  recipient_id: string | null;
  payload: Record<string, unknown>;
  created_at: Date;
  actor_handle: string | null;
  actor_name: string | null;
  member_handle: string | null;
  task_title: string | null;
  project_title: string | null;
}

// A payload id as a uuid, or null: payloads are free-form JSON, and a value that is not a uuid must
// not make the cast fail the whole page.
const payloadId = (key: string) =>
  sql`CASE WHEN e.payload ->> ${key} ~* ${UUID.source} THEN (e.payload ->> ${key})::uuid END`;

/**
 * One page of events, newest first, with the names for their summaries. `page` is the bare event
 * rows (already filtered, ordered and limited, so each walk is an index range); the names are then
 * looked up for just those rows.
 */
function withNames(page: ReturnType<typeof sql>) {
  return sql<EventRow>`
    SELECT e.id, e.circle_id, e.type, e.subject_id, e.actor_id, e.recipient_id, e.payload, e.created_at,
           actor.handle AS actor_handle, actor.display_name AS actor_name,
           member.handle AS member_handle, task.title AS task_title, project.title AS project_title
    FROM (${page}) e
    LEFT JOIN users actor ON actor.id = e.actor_id
    LEFT JOIN users member ON member.id = coalesce(e.recipient_id,
      CASE WHEN e.type LIKE 'member.%' OR e.type = 'contribution.recorded' THEN e.subject_id END)
    LEFT JOIN tasks task ON task.id = CASE WHEN e.type LIKE 'task.%' THEN e.subject_id ELSE ${payloadId('taskId')} END
    LEFT JOIN projects project ON project.id = CASE WHEN e.type LIKE 'project.%' THEN e.subject_id
      ELSE coalesce(${payloadId('projectId')}, task.project_id) END
    ORDER BY e.id DESC`;
}

const COLUMNS = sql`id, circle_id, type, subject_id, actor_id, recipient_id, payload, created_at`;

type PageOptions = { types: string[] | null; snapshot: string; beforeId: number | null; limit: number };

/** One page of the events matching `where`, newest first below `beforeId`, as `snapshot` saw them. */
async function eventPage(db: Db, where: ReturnType<typeof sql>, options: PageOptions): Promise<EventRow[]> {
  const page = sql`
    SELECT ${COLUMNS} FROM events e
    WHERE ${where}
      ${options.types ? sql`AND e.type = ANY(${options.types}::text[])` : sql``}
      ${options.beforeId === null ? sql`` : sql`AND e.id < ${options.beforeId}`}
      AND ${visibleIn('e', options.snapshot)}
    ORDER BY e.id DESC
    LIMIT ${options.limit}`;
  return (await withNames(page).execute(db)).rows;
}

/**
 * The circle's activity feed: every event of the circle but the notices meant for one member,
 * newest first, below `beforeId`, as the snapshot `snapshot` saw them (see src/infra/snapshots.ts).
 * Without `management`, the webhook events are left out too: webhooks are the owner's and admins'
 * (DESIGN.md section 7), and their payloads name the receivers' hosts and the events they hear.
 * Walks events_feed_idx, or events_feed_type_idx when filtered by type.
 */
export async function circleFeed(
  db: Db,
  circleId: string,
  options: PageOptions & { management: boolean },
): Promise<EventRow[]> {
  const audience = options.management ? sql`` : sql`AND e.type NOT LIKE 'webhook.%'`;
  return eventPage(db, sql`e.circle_id = ${circleId}::uuid AND NOT e.recipient_only ${audience}`, options);
}

/**
 * A member's inbox: the events that name them as recipient, in every circle, newest first. Walks
 * events_recipient_idx.
 */
export async function inbox(db: Db, userId: string, options: PageOptions): Promise<EventRow[]> {
  return eventPage(db, sql`e.recipient_id = ${userId}::uuid`, options);
}
