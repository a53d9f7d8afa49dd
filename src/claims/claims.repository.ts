import { type RawBuilder, type Selectable, sql, type Transaction } from 'kysely';
import type { ClaimStatus, ClaimsTable, Database } from '../infra/database-schema.js';
import type { Db, Executor } from '../infra/postgres.js';
import { micros, newestFirstPage } from '../infra/sql.js';
import { callerMembershipOn, lockMembershipShared } from '../circles/circles.repository.js';
import { compiledQueryShapes } from '../infra/compiled-queries.js';
import { isUniqueViolation } from '../infra/pg-errors.js';

// The columns of a claim as the service reads it, in every statement that returns one (all but
// member_slot, which only the claim statements themselves use).
const CLAIM_COLUMNS = [
  'id',
  'circle_id',
  'project_id',
  'task_id',
  'user_id',
  'status',
  'expires_at',
  'lease_started_at',
  'revoke_reason',
  'created_at',
  'updated_at',
] as const;

export type ClaimRow = Pick<Selectable<ClaimsTable>, (typeof CLAIM_COLUMNS)[number]>;

const CLAIM_RETURNING = sql.raw(CLAIM_COLUMNS.join(', '));

// Member slots: every active claim holds one of its member's numbered slots, and the unique index
// claims_member_slot turns two concurrent picks of the same slot into a conflict, so the per-member
// cap holds across any number of API processes. New claims take the regular slots 1..cap. Work sent
// back by a revise takes a regular slot too, or, when the member has none free, an overflow slot
// (-1, -2, ...): the reviewer's decision stands, and the claim still counts. When a regular slot is
// freed, one of the member's overflow claims moves into it in the same transaction, so the member
// cannot claim again until they are back below the cap (fillFreedSlots).

// The lowest of the member's regular claim slots not held by one of their active claims.
const memberSlot = (userId: string, cap: number) => sql`
  SELECT s AS member_slot FROM generate_series(1, ${cap}::int) AS s
  WHERE NOT EXISTS (SELECT 1 FROM claims c WHERE c.user_id = ${userId}::uuid AND c.status = 'active' AND c.member_slot = s)
  ORDER BY s LIMIT 1`;

/**
 * Both claim statements hold the claimer's membership row until they commit. A claim that read
 * the membership and then waited for a task's row would otherwise commit after a departure, and
 * after the relay had revoked the member's claims (departed-members.ts): an active claim of a
 * non-member, holding a slot until its lease ran out. Held, the departure waits for the claim and
 * is relayed after it; or it committed first, and the lock finds no current membership. FOR SHARE,
 * not FOR KEY SHARE: a departure is an update of non-key columns, which FOR KEY SHARE lets through.
 */
const MEMBERSHIP_HELD = sql`FOR SHARE OF m`;

/** The settings that bound a claim (claims.service's ClaimLimits, which this file cannot import). */
type Limits = { memberCap: number; maxLeaseSeconds: number };

// A lease of the project's length, but never longer than MAX_LEASE_SECONDS: the first lease of a
// claim and the one a revise starts are capped as extensions are.
const leaseEnd = (leaseSeconds: number | RawBuilder<unknown>, maxLeaseSeconds: number) =>
  sql`now() + make_interval(secs => LEAST(${leaseSeconds}::int, ${maxLeaseSeconds}::int))`;

// Inserting the claim and its event, given a CTE `bumped(id, circle_id, project_id, lease_seconds)`.
const insertClaim = (userId: string, maxLeaseSeconds: number) => sql`
  ins AS (
    INSERT INTO claims (circle_id, project_id, task_id, user_id, member_slot, expires_at)
    SELECT b.circle_id, b.project_id, b.id, ${userId}::uuid, slot.member_slot, ${leaseEnd(sql.ref('b.lease_seconds'), maxLeaseSeconds)}
    FROM bumped b, slot
    RETURNING ${CLAIM_RETURNING}
  ), ev AS (
    INSERT INTO events (circle_id, type, subject_id, actor_id, payload)
    SELECT circle_id, 'claim.created', id, user_id, jsonb_build_object('taskId', task_id, 'projectId', project_id) FROM ins
  )
  SELECT * FROM ins`;

/**
 * Claims one given task in a single statement. The conditional UPDATE takes the task's row lock,
 * so concurrent claimers queue on that row and each re-checks `live_claims < slots` on the latest
 * version; the CHECK constraint on tasks and the unique index on live claims back it up.
 * Returns nothing when the task can't be claimed now (the caller asks diagnoseClaim why).
 */
export async function claimTask(db: Db, taskId: string, userId: string, limits: Limits): Promise<ClaimRow | undefined> {
  const result = await sql<ClaimRow>`
    WITH target AS (
      SELECT t.id, p.lease_seconds
      FROM tasks t
      JOIN projects p ON p.id = t.project_id AND p.status = 'open'
      JOIN memberships m ON m.circle_id = t.circle_id AND m.user_id = ${userId}::uuid AND m.left_at IS NULL
      WHERE t.id = ${taskId}::uuid
      ${MEMBERSHIP_HELD}
    ), slot AS (${memberSlot(userId, limits.memberCap)}),
    bumped AS (
      UPDATE tasks t SET live_claims = t.live_claims + 1
      FROM target, slot
      WHERE t.id = target.id AND t.status = 'open' AND t.is_leaf AND t.blocking_deps = 0 AND t.blocked_ancestors = 0
        AND t.live_claims < t.slots
        -- Neither held nor contributed to by this member (redundancy counts distinct members); the
        -- unique index claims_one_per_member_and_task settles concurrent claims.
        AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.task_id = t.id AND c.user_id = ${userId}::uuid AND c.status IN ('active', 'submitted', 'accepted'))
      RETURNING t.id, t.circle_id, t.project_id, target.lease_seconds
    ), ${insertClaim(userId, limits.maxLeaseSeconds)}`.execute(db);
  return result.rows[0];
}

// claims/next's statement, in its two shapes (with and without SKIP LOCKED), each a named prepared
// statement; see claimNextTask.
const claimNext = compiledQueryShapes(
  (
    _db,
    // Flat arguments: each is a placeholder while the statement is compiled (compiled-queries.ts).
    a: { projectId: string; userId: string; skills: string[] | null; memberCap: number; maxLeaseSeconds: number },
    shape: { skipLocked: boolean },
  ) => sql<ClaimRow>`
    WITH project AS (
      SELECT p.id, p.lease_seconds
      FROM projects p
      JOIN memberships m ON m.circle_id = p.circle_id AND m.user_id = ${a.userId}::uuid AND m.left_at IS NULL
      WHERE p.id = ${a.projectId}::uuid AND p.status = 'open'
    ), held AS (
      -- Locked apart from project: a CTE with a locking clause is materialized, and planned from a
      -- materialized project the candidate would no longer walk the claimable index in order.
      SELECT 1 FROM projects p
      JOIN memberships m ON m.circle_id = p.circle_id AND m.user_id = ${a.userId}::uuid AND m.left_at IS NULL
      WHERE p.id = ${a.projectId}::uuid
      ${MEMBERSHIP_HELD}
    ), slot AS (${memberSlot(a.userId, a.memberCap)}),
    candidate AS (
      SELECT t.id, project.lease_seconds
      FROM tasks t, project, slot,
        (SELECT coalesce(${a.skills}::text[], (SELECT u.skills FROM users u WHERE u.id = ${a.userId}::uuid)) AS skills) wanted
      WHERE t.project_id = project.id AND t.status = 'open' AND t.is_leaf AND t.blocking_deps = 0 AND t.blocked_ancestors = 0
        AND t.live_claims < t.slots
        -- coalesce(..., false) filters exactly as the bare condition would, but Postgres cannot
        -- estimate it and assumes half the rows match. Estimated on the array statistics of a
        -- generic plan, the bare condition could look rare (1 row in 70), and the plan then read
        -- and sorted every claimable task of the project on each claim instead of walking the
        -- index to the first match (98 ms instead of 0.3 ms on 50,000 tasks).
        AND coalesce(cardinality(wanted.skills) = 0 OR t.skills = '{}' OR t.skills && wanted.skills, false)
        AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.task_id = t.id AND c.user_id = ${a.userId}::uuid AND c.status IN ('active', 'submitted', 'accepted'))
      ORDER BY t.priority DESC, t.seq
      LIMIT 1
      FOR UPDATE OF t ${shape.skipLocked ? sql`SKIP LOCKED` : sql``}
    ), bumped AS (
      UPDATE tasks t SET live_claims = t.live_claims + 1
      FROM candidate, held WHERE t.id = candidate.id
      RETURNING t.id, t.circle_id, t.project_id, candidate.lease_seconds
    ), ${insertClaim(a.userId, a.maxLeaseSeconds)}`,
  { name: 'claim_next' },
);

/**
 * claims/next in one statement: the best claimable task for the caller (unblocked leaf with a free
 * slot, matching the skills, highest priority, oldest first). `skills` null means the caller's
 * profile skills, read inside the statement (a scalar sub-select Postgres evaluates once, so the
 * claimable index is still walked in order); an empty list means any task. With `skipLocked`,
 * concurrent callers never wait on each other's candidate row: each takes the next free task, so
 * there is no single hot lock however many members rush a fresh project. Without it, the
 * statement waits on a locked candidate and re-checks its free slots once the lock is released.
 * It is the hottest statement of the service, so it runs prepared (see prepared-statements.ts).
 */
export async function claimNextTask(
  db: Db,
  projectId: string,
  userId: string,
  skills: string[] | null,
  limits: Limits,
  { skipLocked = true }: { skipLocked?: boolean } = {},
): Promise<ClaimRow | undefined> {
  const { memberCap, maxLeaseSeconds } = limits;
  const result = await claimNext({ skipLocked }).execute(db, { projectId, userId, skills, memberCap, maxLeaseSeconds });
  return result.rows[0];
}

/** Why a claim was refused, read after the fact (only on the failure path). */
export async function diagnoseClaim(
  db: Db,
  userId: string,
  cap: number,
  where: { taskId: string } | { projectId: string },
) {
  const task =
    'taskId' in where
      ? await db
          .selectFrom('tasks')
          .innerJoin('projects', 'projects.id', 'tasks.project_id')
          .select([
            'tasks.circle_id',
            'projects.status as project_status',
            'tasks.status',
            'tasks.is_leaf',
            'tasks.blocking_deps',
            'tasks.blocked_ancestors',
            'tasks.live_claims',
            'tasks.slots',
            sql<boolean>`EXISTS (SELECT 1 FROM claims c WHERE c.task_id = tasks.id AND c.user_id = ${userId}::uuid AND c.status IN ('active', 'submitted'))`.as(
              'mine',
            ),
            sql<boolean>`EXISTS (SELECT 1 FROM claims c WHERE c.task_id = tasks.id AND c.user_id = ${userId}::uuid AND c.status = 'accepted')`.as(
              'contributed',
            ),
          ])
          .where('tasks.id', '=', where.taskId)
          .executeTakeFirst()
      : undefined;
  const project =
    'projectId' in where
      ? await db
          .selectFrom('projects')
          .select(['circle_id', 'status as project_status'])
          .where('id', '=', where.projectId)
          .executeTakeFirst()
      : task;
  const circleId = project?.circle_id;
  const member = circleId
    ? await db
        .selectFrom('memberships')
        .select('role')
        .where('circle_id', '=', circleId)
        .where('user_id', '=', userId)
        .where('left_at', 'is', null)
        .executeTakeFirst()
    : undefined;
  const active = await db
    .selectFrom('claims')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('user_id', '=', userId)
    .where('status', '=', 'active')
    .where('member_slot', 'is not', null)
    .executeTakeFirstOrThrow();
  // No project status for a task or project that does not exist or a caller outside its circle.
  const projectStatus = project && member ? project.project_status : undefined;
  return { projectStatus, task, atCap: active.n >= cap };
}

const CLAIM_DETAIL = [
  ...CLAIM_COLUMNS.map((column) => `claims.${column}` as const),
  'projects.status as project_status',
  'projects.lease_seconds',
  'projects.review_window_seconds',
] as const;

// Whether the lease has run out, by the database's clock: the expiry job decides by it, so a
// request deciding by its own host's clock could disagree with the job by that host's skew.
const LEASE_OVER = sql<boolean>`claims.expires_at <= now()`.as('lease_over');

const claimWithRole = (db: Executor, claimId: string, userId: string) =>
  db
    .selectFrom('claims')
    .innerJoin('projects', 'projects.id', 'claims.project_id')
    .leftJoin('memberships', (j) => j.on(callerMembershipOn('claims.circle_id', userId)))
    .select([...CLAIM_DETAIL, 'memberships.role', LEASE_OVER])
    .where('claims.id', '=', claimId);

/** A claim with its project's settings and the caller's role in the circle (null: not a member). */
export async function findClaimWithRole(db: Executor, claimId: string, userId: string) {
  return claimWithRole(db, claimId, userId).executeTakeFirst();
}

/**
 * The same, with the claim's row locked until the transaction ends: for changing the claim. The
 * role is read again with the caller's membership share-locked (the nullable side of an outer join
 * cannot be locked), so a demotion or departure in flight waits for the write, or the write sees it.
 */
export async function lockClaimWithRole(trx: Transaction<Database>, claimId: string, userId: string) {
  const claim = await claimWithRole(trx, claimId, userId).forUpdate('claims').executeTakeFirst();
  if (!claim?.role) return claim;
  const membership = await lockMembershipShared(trx, claim.circle_id, userId);
  return { ...claim, role: membership?.role ?? null };
}

/** The same claim detail, locked, for work the service does on its own (no caller). */
export async function lockClaim(trx: Transaction<Database>, claimId: string) {
  return trx
    .selectFrom('claims')
    .innerJoin('projects', 'projects.id', 'claims.project_id')
    .select(CLAIM_DETAIL)
    .where('claims.id', '=', claimId)
    .forUpdate('claims')
    .executeTakeFirst();
}

/**
 * Ends one live claim (released, revoked, rejected, accepted) and frees its task slot, in one
 * statement: the one place a slot is given back outside expiry.
 * Returns nothing if the claim was not in one of the `from` states (someone else moved it first).
 */
export async function endClaim(
  trx: Transaction<Database>,
  claimId: string,
  from: ClaimStatus[],
  to: ClaimStatus,
  reason: string | null = null,
): Promise<ClaimRow | undefined> {
  // `prior` is the row as the statement found it: the member slot the claim gives back.
  const result = await sql<ClaimRow & FreedSlot>`
    WITH ended AS (
      UPDATE claims c SET status = ${to}, member_slot = NULL, revoke_reason = ${reason}, updated_at = now()
      FROM claims prior
      WHERE c.id = ${claimId}::uuid AND prior.id = c.id AND c.status = ANY(${from}::text[])
      RETURNING ${sql.join(CLAIM_COLUMNS.map((column) => sql.ref(`c.${column}`)))}, prior.member_slot AS freed_slot
    ), freed AS (
      UPDATE tasks t SET live_claims = t.live_claims - 1 FROM ended WHERE t.id = ended.task_id
    )
    SELECT * FROM ended`.execute(trx);
  const ended = result.rows[0];
  if (!ended) return undefined;
  await fillFreedSlots(trx, [ended]);
  const { freed_slot: _, ...claim } = ended;
  return claim;
}

interface FreedSlot {
  user_id: string;
  freed_slot: number | null;
}

/**
 * Takes the members' slot locks, held to the end of the transaction, in user id order (so two
 * transactions taking several never deadlock on them). A revise and a refill of one member
 * serialize on it: otherwise a revise that reads the member's slots while a release of theirs is
 * uncommitted takes an overflow slot, and the release's refill, which cannot see the revised claim
 * yet, moves nothing: the member would hold a free regular slot beside an overflow claim, and
 * could claim over the cap. New claims do not take it: the slot index makes them race-free.
 */
async function lockMemberSlots(trx: Transaction<Database>, userIds: string[]): Promise<void> {
  await sql`
    SELECT pg_advisory_xact_lock(hashtextextended('member-slots:' || u::text, 0))
    FROM (SELECT DISTINCT u FROM unnest(${userIds}::uuid[]) AS u ORDER BY u) AS members`.execute(trx);
}

/**
 * Moves the members' overflow claims into the regular slots just freed by this transaction, one
 * per freed slot, so revised work over the cap takes the first regular slot that opens. Only
 * slots this transaction freed are filled: no other transaction can be filling them. Runs under
 * the members' slot locks, after which it sees every revise of theirs that committed. Two
 * transactions freeing slots of one member at once may both pick the same overflow claim; the
 * second waits for the first and then moves nothing, so that member's other overflow claim (if
 * any) stays above the cap until their next claim ends.
 */
async function fillFreedSlots(trx: Transaction<Database>, freed: FreedSlot[]): Promise<void> {
  const regular = freed.filter((f): f is FreedSlot & { freed_slot: number } => (f.freed_slot ?? 0) > 0);
  if (!regular.length) return;
  await lockMemberSlots(
    trx,
    regular.map((f) => f.user_id),
  );
  await sql`
    WITH freed AS (
      SELECT user_id, slot, row_number() OVER (PARTITION BY user_id ORDER BY slot) AS k
      FROM unnest(${regular.map((f) => f.user_id)}::uuid[], ${regular.map((f) => f.freed_slot)}::int[]) AS f(user_id, slot)
    ), overflow AS (
      SELECT id, user_id, row_number() OVER (PARTITION BY user_id ORDER BY member_slot DESC) AS k
      FROM claims
      WHERE status = 'active' AND member_slot < 0 AND user_id IN (SELECT user_id FROM freed)
    )
    UPDATE claims c SET member_slot = freed.slot
    FROM overflow JOIN freed USING (user_id, k)
    WHERE c.id = overflow.id AND c.status = 'active' AND c.member_slot < 0`.execute(trx);
}

/**
 * Locks the live claims on these tasks, in id order, before the caller locks the tasks themselves:
 * reviews and revocations lock a claim and then its task, so taking claims first keeps a task's
 * cancellation from deadlocking with a review in flight.
 */
export async function lockLiveClaimsOn(trx: Transaction<Database>, taskIds: string[]): Promise<void> {
  if (taskIds.length === 0) return;
  await sql`
    SELECT id FROM claims WHERE task_id = ANY(${taskIds}::uuid[]) AND status IN ('active', 'submitted')
    ORDER BY id FOR UPDATE`.execute(trx);
}

/**
 * Revokes every live claim on these tasks (cancelled tasks) with the reason and frees their slots,
 * set-based like expiry: each claim leaves a live state once, so each slot is given back once.
 * Returns the revoked claims.
 */
export async function revokeLiveClaimsOn(
  trx: Transaction<Database>,
  taskIds: string[],
  reason: string,
): Promise<ClaimRow[]> {
  if (taskIds.length === 0) return [];
  return revokeClaims(trx, sql`c.task_id = ANY(${taskIds}::uuid[]) AND c.status IN ('active', 'submitted')`, reason);
}

/**
 * Revokes the active claims a member still holds in a circle they left, with the reason, and frees
 * their slots: every one while they are out of the circle, and when they have come back, those
 * made before their current membership began (what they claimed since is theirs). Submitted work
 * stays for review. Locks the claims, in id order, before their tasks (the order reviews and task
 * cancellations take). Only active claims change, so running it again revokes nothing more.
 * Returns the revoked claims.
 */
export async function revokeClaimsOfDepartedMember(
  trx: Transaction<Database>,
  circleId: string,
  userId: string,
  reason: string,
): Promise<ClaimRow[]> {
  const held = await sql<{ id: string }>`
    SELECT c.id FROM claims c
    WHERE c.circle_id = ${circleId}::uuid AND c.user_id = ${userId}::uuid AND c.status = 'active'
      AND NOT EXISTS (
        SELECT 1 FROM memberships m
        WHERE m.circle_id = c.circle_id AND m.user_id = c.user_id AND m.left_at IS NULL AND m.joined_at <= c.created_at)
    ORDER BY c.id
    FOR UPDATE OF c`.execute(trx);
  if (held.rows.length === 0) return [];
  // A claim submitted while this waited for its lock is no longer active and stays for review.
  const ids = held.rows.map((r) => r.id);
  return revokeClaims(trx, sql`c.id = ANY(${ids}::uuid[]) AND c.status = 'active'`, reason);
}

/**
 * Revokes every live claim (active or submitted) of a project that takes no more work: cancelled,
 * or frozen for settlement. Active work can no longer be submitted there, nor submitted work
 * reviewed, so each would hold its task slot and its member's cap for good. Locked first, in id
 * order, like every set-based change of claims.
 */
export async function revokeLiveClaimsOfProject(
  trx: Transaction<Database>,
  projectId: string,
  reason: string,
): Promise<ClaimRow[]> {
  const held = await sql<{ id: string }>`
    SELECT c.id FROM claims c
    WHERE c.project_id = ${projectId}::uuid AND c.status IN ('active', 'submitted')
    ORDER BY c.id
    FOR UPDATE OF c`.execute(trx);
  return revokeLiveClaims(
    trx,
    held.rows.map((r) => r.id),
    reason,
  );
}

/**
 * Live claims left in projects that ended (cancelled or settled), locked in id order, at most
 * `limit`, with their project's status. Normally none: the end's outbox event revokes them. But a
 * claim statement reads its project's status from its snapshot, so one that waited on its task's
 * row while the project ended, and committed after the event was relayed, leaves a claim behind.
 * Claims locked elsewhere are skipped: the next sweep takes them.
 */
export async function lockLiveClaimsOfEndedProjects(
  trx: Transaction<Database>,
  limit: number,
): Promise<{ id: string; project_status: 'cancelled' | 'settled' }[]> {
  const held = await sql<{ id: string; project_status: 'cancelled' | 'settled' }>`
    SELECT c.id, p.status AS project_status
    FROM claims c JOIN projects p ON p.id = c.project_id
    WHERE c.status IN ('active', 'submitted') AND p.status IN ('cancelled', 'settled')
    ORDER BY c.id
    LIMIT ${limit}
    FOR UPDATE OF c SKIP LOCKED`.execute(trx);
  return held.rows;
}

/** Revokes the given live claims (locked by the caller) with the reason; returns them. */
export async function revokeLiveClaims(
  trx: Transaction<Database>,
  claimIds: string[],
  reason: string,
): Promise<ClaimRow[]> {
  if (claimIds.length === 0) return [];
  return revokeClaims(trx, sql`c.id = ANY(${claimIds}::uuid[]) AND c.status IN ('active', 'submitted')`, reason);
}

/**
 * Revokes the claims matching `which` (a condition on claims `c`, which the caller has locked)
 * with the reason and frees their slots, set-based like expiry: each claim leaves a live state
 * once, so each slot is given back once.
 */
async function revokeClaims(trx: Transaction<Database>, which: RawBuilder<unknown>, reason: string) {
  const result = await sql<ClaimRow & FreedSlot>`
    WITH ended AS (
      UPDATE claims c SET status = 'revoked', member_slot = NULL, revoke_reason = ${reason}, updated_at = now()
      FROM claims prior
      WHERE prior.id = c.id AND ${which}
      RETURNING ${sql.join(CLAIM_COLUMNS.map((column) => sql.ref(`c.${column}`)))}, prior.member_slot AS freed_slot
    ), freed AS (
      UPDATE tasks t SET live_claims = t.live_claims - x.n
      FROM (SELECT task_id, count(*)::int AS n FROM ended GROUP BY task_id) x
      WHERE t.id = x.task_id
    )
    SELECT * FROM ended ORDER BY id`.execute(trx);
  // Each member's revised work over the cap moves into the regular slots these revocations freed.
  await fillFreedSlots(trx, result.rows);
  return result.rows.map(({ freed_slot: _, ...claim }) => claim);
}

// The transitions below are taken on a claim the caller has locked and checked; finding it in
// another state is a bug in the caller, not a race.
const notIn = (claimId: string, from: ClaimStatus) =>
  new Error(`claim ${claimId} is not ${from}: lock it and check its status first`);

/**
 * Hands an active claim's work in for review. The claim keeps its task slot until reviewed, but
 * gives back its member slot: submitted work no longer counts against the member's cap of active
 * claims.
 */
export async function submitClaim(trx: Transaction<Database>, claimId: string): Promise<void> {
  const result = await sql<FreedSlot>`
    UPDATE claims c SET status = 'submitted', member_slot = NULL, updated_at = now()
    FROM claims prior
    WHERE c.id = ${claimId}::uuid AND prior.id = c.id AND c.status = 'active'
    RETURNING c.user_id, prior.member_slot AS freed_slot`.execute(trx);
  if (!result.rows.length) throw notIn(claimId, 'active');
  await fillFreedSlots(trx, result.rows);
}

/**
 * Accepts a submitted claim, which ends it and frees its task slot. The task's own completion
 * (accepts counted, done, parents, dependents) is tasks/task-completion.ts's work.
 */
export async function acceptClaim(trx: Transaction<Database>, claimId: string): Promise<ClaimRow> {
  const accepted = await endClaim(trx, claimId, ['submitted'], 'accepted');
  if (!accepted) throw notIn(claimId, 'submitted');
  return accepted;
}

/** Rejects a submitted claim, which ends it and frees its task slot for someone else. */
export async function rejectClaim(trx: Transaction<Database>, claimId: string): Promise<ClaimRow> {
  const rejected = await endClaim(trx, claimId, ['submitted'], 'rejected');
  if (!rejected) throw notIn(claimId, 'submitted');
  return rejected;
}

/**
 * Sends submitted work back for revision: the claim is active again on a fresh lease of
 * `leaseSeconds` (at most MAX_LEASE_SECONDS, like every lease), keeping its task slot, and takes a
 * member slot like a new claim: the lowest free
 * regular one, or at the cap the highest free overflow one (-1 first), so the revise always succeeds
 * and the claim counts against the cap either way.
 *
 * A claim or revise of the same member committing the same slot meanwhile is a unique violation:
 * the statement is retried under a savepoint (keeping the reviewer's transaction), and sees that
 * slot taken. Each conflict is a slot someone else won, and a member has only `memberCap` regular
 * slots and one overflow slot per live revision, so the retries end. Takes the member's slot lock
 * first, so that it never takes an overflow slot beside a regular one a refill is freeing.
 */
export async function reviseClaim(
  trx: Transaction<Database>,
  claimId: string,
  leaseSeconds: number,
  limits: Limits,
): Promise<{ id: string; expires_at: Date }> {
  const owner = await trx.selectFrom('claims').select('user_id').where('id', '=', claimId).executeTakeFirst();
  if (!owner) throw notIn(claimId, 'submitted');
  // The slots are read after a refill of this member in flight has committed (lockMemberSlots).
  await lockMemberSlots(trx, [owner.user_id]);
  for (;;) {
    await sql`SAVEPOINT revise_member_slot`.execute(trx);
    try {
      const result = await sql<{ id: string; expires_at: Date }>`
        UPDATE claims c
        SET status = 'active', updated_at = now(),
            lease_started_at = now(), expires_at = ${leaseEnd(leaseSeconds, limits.maxLeaseSeconds)},
            member_slot = coalesce(
              (SELECT s FROM generate_series(1, ${limits.memberCap}::int) AS s
               WHERE NOT EXISTS (SELECT 1 FROM claims o WHERE o.user_id = c.user_id AND o.status = 'active' AND o.member_slot = s)
               ORDER BY s LIMIT 1),
              (SELECT -s FROM generate_series(1, (SELECT count(*)::int + 1 FROM claims o WHERE o.user_id = c.user_id AND o.status = 'active')) AS s
               WHERE NOT EXISTS (SELECT 1 FROM claims o WHERE o.user_id = c.user_id AND o.status = 'active' AND o.member_slot = -s)
               ORDER BY s LIMIT 1))
        WHERE c.id = ${claimId}::uuid AND c.status = 'submitted'
        RETURNING c.id, c.expires_at`.execute(trx);
      await sql`RELEASE SAVEPOINT revise_member_slot`.execute(trx);
      const revised = result.rows[0];
      if (!revised) throw notIn(claimId, 'submitted');
      return revised;
    } catch (err) {
      if (!isUniqueViolation(err, 'claims_member_slot')) throw err;
      await sql`ROLLBACK TO SAVEPOINT revise_member_slot`.execute(trx);
    }
  }
}

/**
 * Expires up to `limit` active claims past their deadline and frees their slots, set-based (the
 * per-second expiry jobs and the sweep loop over it). SKIP LOCKED lets sweeps on several workers
 * split the work instead of queueing on the same rows. Returns the expired claims.
 */
export async function expireOverdueClaims(db: Db, limit: number) {
  return db.transaction().execute(async (trx) => {
    const result = await sql<{ id: string } & FreedSlot>`
    WITH due AS (
      SELECT id FROM claims
      WHERE status = 'active' AND expires_at <= now()
      ORDER BY expires_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ), ended AS (
      UPDATE claims c SET status = 'expired', member_slot = NULL, updated_at = now()
      FROM due, claims prior WHERE c.id = due.id AND prior.id = c.id
      RETURNING c.id, c.circle_id, c.project_id, c.task_id, c.user_id, prior.member_slot AS freed_slot
    ), freed AS (
      UPDATE tasks t SET live_claims = t.live_claims - x.n
      FROM (SELECT task_id, count(*)::int AS n FROM ended GROUP BY task_id) x
      WHERE t.id = x.task_id
    ), ev AS (
      INSERT INTO events (circle_id, type, subject_id, actor_id, recipient_id, payload)
      SELECT circle_id, 'claim.expired', id, NULL, user_id, jsonb_build_object('taskId', task_id, 'projectId', project_id, 'userId', user_id) FROM ended
    )
    SELECT id, user_id, freed_slot FROM ended`.execute(trx);
    await fillFreedSlots(trx, result.rows);
    return result.rows.map(({ id }) => ({ id }));
  });
}

/** Whether an active claim's lease already runs at least `seconds` from now (database time). */
export async function leaseOutlasts(trx: Transaction<Database>, claimId: string, seconds: number): Promise<boolean> {
  const result = await sql<{ outlasts: boolean }>`
    SELECT expires_at >= now() + make_interval(secs => ${seconds}) AS outlasts
    FROM claims WHERE id = ${claimId}::uuid AND status = 'active'`.execute(trx);
  return result.rows[0]?.outlasts ?? false;
}

/**
 * Moves an active claim's deadline to `seconds` from now, but no further than `maxLeaseSeconds`
 * from the lease start, and only ever later: returns nothing when the lease would not move later.
 */
export async function extendLease(
  trx: Transaction<Database>,
  claimId: string,
  seconds: number,
  maxLeaseSeconds: number,
) {
  const extendedTo = sql`LEAST(now() + make_interval(secs => ${seconds}), lease_started_at + make_interval(secs => ${maxLeaseSeconds}))`;
  const result = await sql<ClaimRow>`
    UPDATE claims SET expires_at = ${extendedTo}, updated_at = now()
    WHERE id = ${claimId}::uuid AND status = 'active' AND ${extendedTo} > expires_at
    RETURNING ${CLAIM_RETURNING}`.execute(trx);
  return result.rows[0];
}

export async function listClaimsOfUser(
  db: Db,
  userId: string,
  status: ClaimStatus | undefined,
  limit: number,
  after: [number, string] | null,
) {
  let q = db
    .selectFrom('claims')
    .select([...CLAIM_COLUMNS, micros('claims.created_at').as('cursor_ts')])
    .where('user_id', '=', userId);
  if (status) q = q.where('status', '=', status);
  return newestFirstPage(q, limit, after).execute();
}

/**
 * A project's or a task's claims, newest first, narrowed by the filters given. Pages along
 * claims_project_idx (project) or claims_task_idx (task; a task has few claims).
 */
export async function listClaims(
  db: Db,
  where: { projectId: string } | { taskId: string },
  filters: { status?: ClaimStatus; taskId?: string; userId?: string },
  limit: number,
  after: [number, string] | null,
) {
  let q = db.selectFrom('claims').select([...CLAIM_COLUMNS, micros('claims.created_at').as('cursor_ts')]);
  q = 'projectId' in where ? q.where('project_id', '=', where.projectId) : q.where('task_id', '=', where.taskId);
  if (filters.status) q = q.where('status', '=', filters.status);
  if (filters.taskId) q = q.where('task_id', '=', filters.taskId);
  if (filters.userId) q = q.where('user_id', '=', filters.userId);
  return newestFirstPage(q, limit, after).execute();
}
