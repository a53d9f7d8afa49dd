import { type Selectable, sql, type Transaction } from 'kysely';
import type { ContributionSource, ContributionsTable, Database } from '../infra/database-schema.js';
import type { Db } from '../infra/postgres.js';
import { visibleIn } from '../infra/snapshots.js';

/** A contribution row as Postgres returns it. */
export type ContributionRow = Selectable<ContributionsTable>;

/** Appends a ledger row. The table refuses UPDATE and DELETE, so this is the only way to change totals. */
export async function insertContribution(
  trx: Transaction<Database>,
  row: {
    circleId: string;
    /** Null for circle-level points (check-ins). */
    projectId: string | null;
    userId: string;
    source: ContributionSource;
    taskId?: string;
    claimId?: string;
    checkinId?: string;
    points: number;
    reason?: string;
    createdBy?: string | null;
  },
): Promise<ContributionRow> {
  return trx
    .insertInto('contributions')
    .values({
      circle_id: row.circleId,
      project_id: row.projectId,
      user_id: row.userId,
      source: row.source,
      task_id: row.taskId ?? null,
      claim_id: row.claimId ?? null,
      checkin_id: row.checkinId ?? null,
      points: row.points,
      reason: row.reason ?? null,
      created_by: row.createdBy ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Serialises adjustments for one member of one project until the transaction ends, so the check
 * that an adjustment does not take the member below zero can't race another.
 */
export async function lockMemberProjectPoints(
  trx: Transaction<Database>,
  projectId: string,
  userId: string,
): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`${projectId}:${userId}`}, 0))`.execute(trx);
}

export async function memberProjectPoints(
  trx: Transaction<Database>,
  projectId: string,
  userId: string,
): Promise<number> {
  const row = await trx
    .selectFrom('contributions')
    .select(sql<number>`coalesce(sum(points), 0)::bigint`.as('points'))
    .where('project_id', '=', projectId)
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow();
  return row.points;
}

/**
 * Per-member totals for a project, aggregated in SQL, highest first, keyset-paginated, counting the
 * contributions visible in `snapshot` (the walk's first page's): points earned meanwhile would
 * move members across the page boundary, serving one twice and skipping another.
 */
export async function projectTotals(
  db: Db,
  projectId: string,
  snapshot: string,
  limit: number,
  after: [number, string] | null,
) {
  const totals = db
    .selectFrom('contributions')
    .innerJoin('users', 'users.id', 'contributions.user_id')
    .select([
      'contributions.user_id',
      'users.handle',
      sql<number>`sum(contributions.points)::bigint`.as('points'),
      sql<number>`(count(*) FILTER (WHERE contributions.source = 'task'))::int`.as('accepted_tasks'),
    ])
    .where('contributions.project_id', '=', projectId)
    .where(visibleIn('contributions', snapshot))
    .groupBy(['contributions.user_id', 'users.handle']);
  let q = db.selectFrom(totals.as('t')).selectAll();
  if (after)
    q = q.where(
      sql<boolean>`(t.points < ${after[0]}::bigint OR (t.points = ${after[0]}::bigint AND t.user_id > ${after[1]}::uuid))`,
    );
  return q
    .orderBy('t.points', 'desc')
    .orderBy('t.user_id')
    .limit(limit + 1)
    .execute();
}

/**
 * One page of a project's contribution rows for export, by id, with the member and task named:
 * the rows after `after` that are visible in `snapshot`, the snapshot the export began in.
 */
export async function projectContributionsPage(
  db: Db,
  projectId: string,
  range: { after: number | null; snapshot: string },
  limit: number,
) {
  return db
    .selectFrom('contributions')
    .innerJoin('users', 'users.id', 'contributions.user_id')
    .leftJoin('tasks', 'tasks.id', 'contributions.task_id')
    .select([
      'contributions.id',
      'contributions.created_at',
      'users.handle',
      'users.display_name',
      'contributions.source',
      'contributions.points',
      'tasks.title as task_title',
      'contributions.reason',
    ])
    .where('contributions.project_id', '=', projectId)
    .where('contributions.id', '>', range.after ?? 0)
    .where(visibleIn('contributions', range.snapshot))
    .orderBy('contributions.id')
    .limit(limit)
    .execute();
}
