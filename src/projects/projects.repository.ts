import { type Selectable, sql, type Transaction } from 'kysely';
import type { Db, Executor } from '../infra/postgres.js';
import { fromMicros, micros } from '../infra/sql.js';
import type { Database, ProjectStatus, ProjectsTable } from '../infra/database-schema.js';
import { callerMembershipOn, lockMembershipShared } from '../circles/circles.repository.js';
import { compiledQueryShapes } from '../infra/compiled-queries.js';

const PROJECT_COLUMNS = [
  'projects.id',
  'projects.circle_id',
  'projects.title',
  'projects.description',
  'projects.status',
  'projects.reward_amount',
  'projects.reward_unit',
  'projects.lease_seconds',
  'projects.review_window_seconds',
  'projects.created_by',
  'projects.created_at',
  'projects.updated_at',
] as const;

/** A project as stored: every column (PROJECT_COLUMNS, or returningAll). */
export type ProjectRow = Selectable<ProjectsTable>;

/** What an owner or admin may change on a project. */
export type ProjectChanges = Partial<
  Pick<
    ProjectRow,
    'title' | 'description' | 'status' | 'reward_amount' | 'reward_unit' | 'lease_seconds' | 'review_window_seconds'
  >
>;

export async function insertProject(
  trx: Transaction<Database>,
  p: {
    circleId: string;
    title: string;
    description: string;
    status: ProjectStatus;
    rewardAmount: number;
    rewardUnit: string;
    leaseSeconds: number;
    reviewWindowSeconds: number;
    createdBy: string;
  },
): Promise<ProjectRow> {
  return trx
    .insertInto('projects')
    .values({
      circle_id: p.circleId,
      title: p.title,
      description: p.description,
      status: p.status,
      reward_amount: p.rewardAmount,
      reward_unit: p.rewardUnit,
      lease_seconds: p.leaseSeconds,
      review_window_seconds: p.reviewWindowSeconds,
      created_by: p.createdBy,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

const projectWithRole = compiledQueryShapes(
  (db, a: { projectId: string; userId: string }, shape: { lock: boolean }) => {
    const q = db
      .selectFrom('projects')
      .leftJoin('memberships', (j) => j.on(callerMembershipOn('projects.circle_id', a.userId)))
      .select([...PROJECT_COLUMNS, 'memberships.role'])
      .where('projects.id', '=', a.projectId);
    return shape.lock ? q.forNoKeyUpdate('projects') : q;
  },
);

/** The project and the caller's role in its circle (null when not a member), in one query. */
export async function findProjectWithRole(db: Executor, projectId: string, userId: string) {
  return (await projectWithRole({ lock: false }).execute(db, { projectId, userId })).rows[0];
}

/**
 * The same, with the project's row locked against other writers until the transaction ends.
 * FOR NO KEY UPDATE, not FOR UPDATE: every claim insert checks its project_id foreign key with a
 * KEY SHARE lock, which FOR UPDATE blocks. Under FOR UPDATE a task post or a settle request held
 * up every claim in the project, and a claim holding task X deadlocked with a post naming X as
 * parent or dependency. This mode still conflicts with itself and with the FOR SHARE that reviews,
 * edits and cancels take, which is all the serialization the writers rely on.
 */
export async function lockProjectWithRole(trx: Transaction<Database>, projectId: string, userId: string) {
  const project = (await projectWithRole({ lock: true }).execute(trx, { projectId, userId })).rows[0];
  if (!project?.role) return project;
  // The role came joined to the project, unlocked: a demotion in flight would not wait for this
  // write. The membership is share-locked too (the nullable side of an outer join cannot be), and
  // its role read again under the lock.
  const membership = await lockMembershipShared(trx, project.circle_id, userId);
  return { ...project, role: membership?.role ?? null };
}

export async function listProjects(db: Db, circleId: string, limit: number, after: [number, string] | null) {
  let q = db
    .selectFrom('projects')
    .select([...PROJECT_COLUMNS, micros('projects.created_at').as('cursor_ts')])
    .where('circle_id', '=', circleId);
  if (after)
    q = q.where(sql<boolean>`(projects.created_at, projects.id) > (${fromMicros(after[0])}, ${after[1]}::uuid)`);
  return q
    .orderBy('created_at')
    .orderBy('id')
    .limit(limit + 1)
    .execute();
}

export async function updateProject(
  trx: Transaction<Database>,
  projectId: string,
  changes: ProjectChanges,
): Promise<ProjectRow> {
  return trx
    .updateTable('projects')
    .set({ ...changes, updated_at: sql<Date>`now()` })
    .where('id', '=', projectId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Progress counters, aggregated in SQL. */
export async function projectProgress(db: Executor, projectId: string) {
  const tasks = await db
    .selectFrom('tasks')
    .select([
      sql<number>`count(*)::int`.as('total'),
      sql<number>`(count(*) FILTER (WHERE status = 'open'))::int`.as('open'),
      sql<number>`(count(*) FILTER (WHERE status = 'done'))::int`.as('done'),
      sql<number>`coalesce(sum(live_claims), 0)::int`.as('live_claims'),
    ])
    .where('project_id', '=', projectId)
    .executeTakeFirstOrThrow();
  const points = await db
    .selectFrom('contributions')
    .select(sql<number>`coalesce(sum(points), 0)::bigint`.as('points'))
    .where('project_id', '=', projectId)
    .executeTakeFirstOrThrow();
  return {
    tasksTotal: tasks.total,
    tasksOpen: tasks.open,
    tasksDone: tasks.done,
    liveClaims: tasks.live_claims,
    pointsAccepted: points.points,
  };
}

/**
 * Takes a share lock on the project for a transaction that writes contributions. Settlement takes
 * the row's update lock when it freezes the cutoff, so the two serialise: a contribution is either
 * committed before the cutoff is read, or sees the project settled and is refused.
 */
export async function lockProjectShared(trx: Transaction<Database>, projectId: string): Promise<ProjectStatus> {
  const row = await trx
    .selectFrom('projects')
    .select('status')
    .where('id', '=', projectId)
    .forShare()
    .executeTakeFirstOrThrow();
  return row.status;
}
