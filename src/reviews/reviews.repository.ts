import { sql, type Transaction } from 'kysely';
import type { Database, ReviewDecision } from '../infra/database-schema.js';
import type { Executor } from '../infra/postgres.js';
import { fromMicros, micros } from '../infra/sql.js';

export type SubmissionRow = {
  id: string;
  claim_id: string;
  user_id: string;
  revision: number;
  content: string;
  links: string[];
  review_due_at: Date;
  created_at: Date;
};

export async function insertSubmission(
  trx: Transaction<Database>,
  s: {
    circleId: string;
    claimId: string;
    userId: string;
    content: string;
    links: string[];
    reviewWindowSeconds: number;
  },
): Promise<SubmissionRow> {
  const result = await sql<SubmissionRow>`
    INSERT INTO submissions (circle_id, claim_id, user_id, revision, content, links, review_due_at)
    VALUES (${s.circleId}::uuid, ${s.claimId}::uuid, ${s.userId}::uuid,
            (SELECT coalesce(max(revision), 0) + 1 FROM submissions WHERE claim_id = ${s.claimId}::uuid),
            ${s.content}, ${s.links}::text[], now() + make_interval(secs => ${s.reviewWindowSeconds}))
    RETURNING id, claim_id, user_id, revision, content, links, review_due_at, created_at`.execute(trx);
  const [created] = result.rows;
  if (!created) throw new Error('INSERT ... RETURNING gave no row');
  return created;
}

export async function latestSubmission(trx: Transaction<Database>, claimId: string) {
  return trx
    .selectFrom('submissions')
    .select(['id', 'claim_id', 'user_id', 'revision', 'content', 'links', 'review_due_at', 'created_at'])
    .where('claim_id', '=', claimId)
    .orderBy('revision', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export async function insertReview(
  trx: Transaction<Database>,
  r: {
    circleId: string;
    submissionId: string;
    claimId: string;
    reviewerId: string | null;
    decision: ReviewDecision;
    score: number | null;
    feedback: string;
    automatic: boolean;
  },
) {
  return trx
    .insertInto('reviews')
    .values({
      circle_id: r.circleId,
      submission_id: r.submissionId,
      claim_id: r.claimId,
      reviewer_id: r.reviewerId,
      decision: r.decision,
      score: r.score,
      feedback: r.feedback,
      automatic: r.automatic,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function listSubmissions(db: Executor, claimId: string) {
  return db
    .selectFrom('submissions')
    .leftJoin('reviews', 'reviews.submission_id', 'submissions.id')
    .select([
      'submissions.id',
      'submissions.claim_id',
      'submissions.revision',
      'submissions.content',
      'submissions.links',
      'submissions.review_due_at',
      'submissions.created_at',
      'reviews.id as review_id',
      'reviews.decision',
      'reviews.score',
      'reviews.feedback',
      'reviews.reviewer_id',
      'reviews.automatic',
      'reviews.created_at as reviewed_at',
    ])
    .where('submissions.claim_id', '=', claimId)
    .orderBy('submissions.revision')
    .execute();
}

/** Submissions whose review window has passed with their claim still waiting (for the sweep). */
export async function overdueSubmissions(db: Executor, limit: number) {
  const result = await sql<{ id: string }>`
    SELECT s.id FROM submissions s
    JOIN claims c ON c.id = s.claim_id AND c.status = 'submitted'
    JOIN projects p ON p.id = c.project_id AND p.status NOT IN ('settled', 'cancelled')
    WHERE s.review_due_at <= now()
      AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.submission_id = s.id)
    ORDER BY s.review_due_at
    LIMIT ${limit}`.execute(db);
  return result.rows.map((r) => r.id);
}

/** A submission whose review window has closed, by the database's clock (the one deadlines use). */
export async function findOverdueSubmission(db: Executor, submissionId: string) {
  return db
    .selectFrom('submissions')
    .select(['id', 'claim_id'])
    .where('id', '=', submissionId)
    .where('review_due_at', '<=', sql<Date>`now()`)
    .executeTakeFirst();
}

/** How long until the submission's review window closes by the database's clock (negative once it has). */
export async function msUntilReviewDue(db: Executor, submissionId: string): Promise<number | undefined> {
  const { rows } = await sql<{ ms: number }>`
    SELECT extract(epoch FROM review_due_at - now())::float8 * 1000 AS ms FROM submissions WHERE id = ${submissionId}::uuid`.execute(
    db,
  );
  return rows[0]?.ms;
}

export type ReviewQueueRow = {
  claim_id: string;
  task_id: string;
  task_title: string;
  project_id: string;
  user_id: string;
  handle: string;
  submission_id: string;
  revision: number;
  submitted_at: Date;
  review_due_at: Date;
  cursor_ts: number;
};

/**
 * The circle's submitted claims, oldest submission first, with what a reviewer needs to pick one.
 * A submitted claim's updated_at is its latest submission's created_at (same transaction; the
 * invariant check watches it), so the walk follows claims_review_queue_idx and reads the latest
 * submission by (claim_id, revision) per row: cost by page size, not by the circle's history.
 * Projects frozen by settlement or cancellation are left out: their work can no longer be reviewed.
 */
export async function listReviewQueue(db: Executor, circleId: string, limit: number, after: [number, string] | null) {
  const result = await sql<ReviewQueueRow>`
    SELECT c.id AS claim_id, c.task_id, t.title AS task_title, c.project_id, c.user_id, u.handle,
           s.id AS submission_id, s.revision, s.created_at AS submitted_at, s.review_due_at,
           ${micros('c.updated_at')} AS cursor_ts
    FROM claims c
    JOIN projects p ON p.id = c.project_id AND p.status NOT IN ('settled', 'cancelled')
    JOIN tasks t ON t.id = c.task_id
    JOIN users u ON u.id = c.user_id
    CROSS JOIN LATERAL (
      SELECT id, revision, created_at, review_due_at FROM submissions
      WHERE claim_id = c.id ORDER BY revision DESC LIMIT 1
    ) s
    WHERE c.circle_id = ${circleId}::uuid AND c.status = 'submitted'
      ${after ? sql`AND (c.updated_at, c.id) > (${fromMicros(after[0])}, ${after[1]}::uuid)` : sql``}
    ORDER BY c.updated_at, c.id
    LIMIT ${limit + 1}`.execute(db);
  return result.rows;
}
