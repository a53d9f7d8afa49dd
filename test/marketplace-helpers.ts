import type { Test } from 'tap';
import type { FastifyInstance } from 'fastify';
import type { Job, Queue } from 'bullmq';
import type { Config } from '../src/config.js';
import type { Db } from '../src/infra/postgres.js';
import { processors, startWorkerRole, type workerMetrics } from '../src/worker.js';
import { startWorkers as startProcessors } from '../src/jobs/worker-runtime.js';
import { expiryDueAt, expiryJobId } from '../src/claims/claim-expiry.job.js';
import { Queues, storedJobId } from '../src/jobs/queues.js';
import { UnrecoverableError } from 'bullmq';
import { openQueueConnection, openWorker } from '../src/jobs/queue-backend.js';
import type { TaskNodeInput } from '../src/tasks/task-tree.js';
import { addMember, call, createCircle, registerUser, type Reply, type TestUser } from './helper.js';

// Building blocks for the marketplace tests (projects, tasks, claims, reviews, contributions):
// everything goes through the HTTP API, except assertions on rows and on BullMQ jobs.

/** The request shape of a task tree node, as the service defines it. */
export type TaskNode = TaskNodeInput;

/** Creates a project (open by default) and returns its body; throws unless 201. */
export async function createProject(
  app: FastifyInstance,
  owner: TestUser,
  circleId: string,
  body: Record<string, unknown> = {},
) {
  const res = await call(app, 'POST', `/v1/circles/${circleId}/projects`, {
    token: owner.token,
    body: { title: 'Project', ...body },
  });
  if (res.status !== 201) throw new Error(`create project failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as {
    id: string;
    circleId: string;
    status: string;
    leaseSeconds: number;
    reviewWindowSeconds: number;
    progress: Record<string, number>;
  };
}

/** Adds task trees to a project and returns the created tasks (parents before children). */
export async function addTasks(
  app: FastifyInstance,
  owner: TestUser,
  projectId: string,
  tasks: TaskNode[],
  parentId?: string,
) {
  const res = await call(app, 'POST', `/v1/projects/${projectId}/tasks`, {
    token: owner.token,
    body: { tasks, ...(parentId ? { parentId } : {}) },
  });
  if (res.status !== 201) throw new Error(`add tasks failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.items as {
    id: string;
    title: string;
    slots: number;
    weight: number;
    status: string;
    blocked: boolean;
    claimable: boolean;
  }[];
}

/** A project with one task, returning both. */
export async function projectWithTask(
  app: FastifyInstance,
  owner: TestUser,
  circleId: string,
  task: Partial<TaskNode> = {},
  project: Record<string, unknown> = {},
) {
  const p = await createProject(app, owner, circleId, project);
  const [t] = await addTasks(app, owner, p.id, [{ title: 'Task', ...task }]);
  return { project: p, task: t! };
}

/**
 * Registers `count` users and joins them to an open circle, `batch` at a time: bounded
 * parallelism keeps the connection pool and the CPU (password hashing) from saturating.
 */
export async function joinMembers(
  app: FastifyInstance,
  circleId: string,
  count: number,
  batch = 20,
  prefix = 'm',
): Promise<TestUser[]> {
  const users: TestUser[] = [];
  for (let i = 0; i < count; i += batch) {
    const group = await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, async () => {
        const user = await registerUser(app, prefix);
        const joined = await call(app, 'POST', `/v1/circles/${circleId}/members`, { token: user.token, body: {} });
        if (joined.status !== 201) throw new Error(`join failed: ${joined.status} ${JSON.stringify(joined.body)}`);
        return user;
      }),
    );
    users.push(...group);
  }
  return users;
}

/**
 * The cast of most access tests: an owner with a circle, an admin and `members` members in it
 * (`member` is the first), and an outsider who belongs to no circle. Members of an open circle
 * join it directly; those of an invite-only circle with a code the owner issues.
 */
export async function circleWithRoles(
  app: FastifyInstance,
  options: { joinPolicy?: 'open' | 'invite'; members?: number } = {},
) {
  const { joinPolicy = 'open', members: count = 1 } = options;
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner, joinPolicy);
  const admin = await addMember(app, owner, circle.id, 'admin');
  const members: TestUser[] = [];
  if (joinPolicy === 'open') members.push(...(await joinMembers(app, circle.id, count)));
  else for (let i = 0; i < count; i++) members.push(await addMember(app, owner, circle.id));
  const outsider = await registerUser(app, 'outsider');
  return { owner, circle, admin, member: members[0]!, members, outsider };
}

export const claimTask = (app: FastifyInstance, user: TestUser, taskId: string) =>
  call(app, 'POST', `/v1/tasks/${taskId}/claims`, { token: user.token });

export const claimNext = (
  app: FastifyInstance,
  user: TestUser,
  projectId: string,
  body: Record<string, unknown> = {},
) => call(app, 'POST', `/v1/projects/${projectId}/claims/next`, { token: user.token, body });

export const submitWork = (app: FastifyInstance, user: TestUser, claimId: string, content = 'Here is the work') =>
  call(app, 'POST', `/v1/claims/${claimId}/submissions`, { token: user.token, body: { content } });

export const review = (
  app: FastifyInstance,
  reviewer: TestUser,
  claimId: string,
  body: { decision: 'accept' | 'reject' | 'revise'; score?: number; feedback?: string },
) => call(app, 'POST', `/v1/claims/${claimId}/reviews`, { token: reviewer.token, body });

/** Claims, submits and has the owner accept one task; returns the claim id. */
export async function completeTask(
  app: FastifyInstance,
  owner: TestUser,
  member: TestUser,
  taskId: string,
  score?: number,
): Promise<string> {
  const claim = await claimTask(app, member, taskId);
  if (claim.status !== 201) throw new Error(`claim failed: ${claim.status} ${JSON.stringify(claim.body)}`);
  const submitted = await submitWork(app, member, claim.body.id);
  if (submitted.status !== 201) throw new Error(`submit failed: ${submitted.status} ${JSON.stringify(submitted.body)}`);
  const accepted = await review(app, owner, claim.body.id, {
    decision: 'accept',
    ...(score === undefined ? {} : { score }),
  });
  if (accepted.status !== 201) throw new Error(`review failed: ${accepted.status} ${JSON.stringify(accepted.body)}`);
  return claim.body.id;
}

/** How many of the replies have each status, e.g. { 201: 1, 409: 99 }. */
export function countStatuses(replies: Reply[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const r of replies) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}

export function countCodes(replies: Reply[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of replies) {
    const code = r.status === 201 ? '201' : String(r.body?.code);
    counts[code] = (counts[code] ?? 0) + 1;
  }
  return counts;
}

/** Polls until `probe` returns a truthy value or the deadline passes; returns the last value. */
export async function waitFor<T>(probe: () => Promise<T>, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value || Date.now() >= deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * /readyz once its answer is `wanted` (by default 200), or its last answer after `timeoutMs`. Its
 * probes have 2 s deadlines that a starved test process can miss (the store is then named as
 * unreachable, rightly), so a check retries as an orchestrator's probe does: an app with everything
 * up until it is ready, an app with one store down until the answer names that store alone.
 */
export async function readyz(
  app: FastifyInstance,
  wanted: (reply: Reply) => boolean = (r) => r.status === 200,
  timeoutMs = 20_000,
): Promise<Reply> {
  let last: Reply | undefined;
  await waitFor(
    async () => {
      last = await call(app, 'GET', '/readyz');
      return wanted(last);
    },
    timeoutMs,
    200,
  );
  return last as Reply;
}

const silentLog = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  fatal() {},
  trace() {},
  child() {
    return silentLog;
  },
  level: 'silent',
  silent() {},
};

/**
 * The production processors on real BullMQ workers (the test's queue backend), without the
 * repeating schedules: only the jobs the test adds run. Returns producers on the same store; all
 * closed at teardown.
 */
export async function processorWorkers(t: Test, db: Db, config: Config) {
  const consumer = openQueueConnection(config, 'worker');
  const producer = openQueueConnection(config, 'worker');
  const queues = new Queues(producer, config.queuePrefix);
  const running = await startProcessors(consumer, { db, queues, config, log: silentLog as never }, processors);
  t.teardown(async () => {
    await running.close();
    await queues.close();
    await consumer.close();
    await producer.close();
  });
  return queues;
}

/**
 * A worker on `name` that fails every job at once, as BullMQ fails a job whose workers died more
 * often than it allows (or the real processor does when its store stays unreachable). Closed at
 * teardown, or earlier by the returned close.
 */
export function saboteurWorker(t: Test, config: Config, name: 'settlements' | 'webhook-delivery') {
  const connection = openQueueConnection(config, 'worker');
  const worker = openWorker(
    name,
    async () => {
      throw new UnrecoverableError('job stalled more than allowable limit');
    },
    connection,
    { prefix: config.queuePrefix, concurrency: 1, lockSeconds: config.jobLockSeconds },
  );
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= worker.close().then(() => connection.close());
    return closed;
  };
  t.teardown(close);
  return { close };
}

/**
 * Waits until the job under `jobId` has failed for the `run`th time: failed, and retried in place
 * by the sweep (Queues.requeue counts that in its data) `run - 1` times.
 */
export async function failedRun(queue: Queue, jobId: string, run: number): Promise<Job> {
  const job = await waitFor(async () => {
    const found = await queue.getJob(jobId);
    const requeued = Number(found?.data.requeued ?? 0);
    return found && requeued === run - 1 && (await found.getState()) === 'failed' ? found : undefined;
  }, 30_000);
  if (!job) throw new Error(`job ${jobId} did not fail for the ${run}th time`);
  return job;
}

/**
 * Starts the real worker role (every queue and the sweeps) on the test's config; closed at
 * teardown. `metrics`: the worker's job figures (src/worker.ts workerMetrics), to serve them.
 */
export async function startWorkers(t: Test, config: Config, metrics?: ReturnType<typeof workerMetrics>) {
  const workers = await startWorkerRole(config, silentLog as never, metrics);
  t.teardown(() => workers.close());
  return workers;
}

/**
 * A BullMQ queue handle on the test's queue store (its backend, prefix or database), to inspect or
 * remove jobs; closed at teardown.
 */
export function queueHandle(t: Test, config: Config, name: 'claim-expiry' | 'review-deadline' | 'maintenance') {
  const connection = openQueueConnection(config, 'worker');
  const queues = new Queues(connection, config.queuePrefix);
  t.teardown(async () => {
    await queues.close();
    await connection.close();
  });
  return queues.get(name);
}

/**
 * A job a request enqueued. The request may answer before its enqueue has landed (an enqueue on the
 * request path has a 2 s limit, and a starved process can run past it while the add goes on), so
 * this waits for the job instead of looking once.
 */
export async function enqueuedJob(queue: Queue, jobId: string, timeoutMs = 10_000): Promise<Job | undefined> {
  return waitFor(() => queue.getJob(jobId), timeoutMs, 25);
}

/** Waits until a BullMQ job has finished (completed, or failed for good) and returns it. */
export async function finishedJob(queue: Queue, jobId: string, timeoutMs = 30_000): Promise<Job> {
  const job = await waitFor(
    async () => {
      const found = await queue.getJob(jobId);
      return found?.finishedOn ? found : undefined;
    },
    timeoutMs,
    50,
  );
  if (!job) throw new Error(`job ${jobId} did not finish in ${timeoutMs} ms`);
  return job;
}

/** The BullMQ job id of the expiry job for a lease deadline's second (see src/claims/claim-expiry.job.ts). */
export const claimExpiryJobId = (expiresAt: string) => storedJobId(expiryJobId(expiryDueAt(new Date(expiresAt))));

export async function eventTypes(db: Db, subjectId: string): Promise<string[]> {
  const rows = await db.selectFrom('events').select('type').where('subject_id', '=', subjectId).orderBy('id').execute();
  return rows.map((r) => r.type);
}

/** What creating tasks writes: a refused request must leave all three counts as they were. */
export const taskTreeFootprint = async (db: Db) => ({
  tasks: await countRows(db, 'tasks'),
  deps: await countRows(db, 'task_dependencies'),
  events: await countRows(db, 'events'),
});

export async function countRows(
  db: Db,
  table: 'tasks' | 'task_dependencies' | 'events' | 'claims' | 'contributions' | 'projects' | 'reviews',
): Promise<number> {
  const row = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
