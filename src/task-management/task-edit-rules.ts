import { conflict, invalid, type FieldError } from '../errors.js';
import { normalizeSkills } from '../accounts/skills.js';
import { MAX_DEPENDENCIES, dependencyCycle } from '../tasks/task-tree.js';

// What an owner may change on a task after posting, as plain functions: no database, no HTTP.
// History is never rewritten: only open tasks change, and the changes apply from now on.

export interface TaskEdit {
  title?: string;
  description?: string;
  skills?: string[];
  priority?: number;
  slots?: number;
  requiredAccepts?: number;
  weight?: number;
}

/** The task as it is, locked, before the edit. */
export interface TaskState {
  status: 'open' | 'done' | 'cancelled';
  isLeaf: boolean;
  liveClaims: number;
}

// Fields that only mean something on a task members claim: a parent is never claimed, never
// reviewed and earns nobody points (it is done when its children are).
const LEAF_ONLY = ['skills', 'priority', 'slots', 'requiredAccepts', 'weight'] as const;

/**
 * The column changes an edit makes, checked against the task's state: a done or cancelled task is
 * history (409 task_not_open); claim settings on a parent are refused (409 task_not_leaf); slots
 * below the claims holding one now would leave a member without one (409 slots_below_live_claims).
 * Required accepts may drop to or below the accepts counted: the task is then done, as after an
 * accept. A new weight counts for accepts from now on; accepted work keeps its points.
 */
export function planTaskEdit(task: TaskState, edit: TaskEdit) {
  if (task.status !== 'open') throw conflict('task_not_open', `The task is ${task.status}; it can no longer change.`);
  const leafOnly = LEAF_ONLY.filter((field) => edit[field] !== undefined);
  if (!task.isLeaf && leafOnly.length)
    throw conflict(
      'task_not_leaf',
      `${leafOnly.join(', ')} apply only to tasks members claim; this task has sub-tasks.`,
    );
  if (edit.slots !== undefined && edit.slots < task.liveClaims)
    throw conflict(
      'slots_below_live_claims',
      `${task.liveClaims} claims hold a slot of this task now; slots cannot go below that (revoke claims first).`,
    );
  return {
    ...(edit.title !== undefined && { title: edit.title }),
    ...(edit.description !== undefined && { description: edit.description }),
    ...(edit.skills !== undefined && { skills: normalizeSkills(edit.skills) }),
    ...(edit.priority !== undefined && { priority: edit.priority }),
    ...(edit.slots !== undefined && { slots: edit.slots }),
    ...(edit.requiredAccepts !== undefined && { required_accepts: edit.requiredAccepts }),
    ...(edit.weight !== undefined && { weight: edit.weight }),
  };
}

/**
 * Checks a task's new dependencies against its project (400 invalid_dependencies): each must be
 * another task of the same project, at most MAX_DEPENDENCIES, and none may close a cycle through
 * the dependencies or the task tree (a task waiting for its own ancestor would wait forever).
 * Returns them lower-cased and without repeats.
 */
export function checkDependencies(
  taskId: string,
  dependsOn: string[],
  project: {
    taskIds: ReadonlySet<string>;
    dependencies: readonly { taskId: string; dependsOnId: string }[];
    tree: readonly { id: string; parentId: string | null }[];
    titleOf: (id: string) => string;
  },
): string[] {
  const ids = [...new Set(dependsOn.map((id) => id.toLowerCase()))];
  const errors: FieldError[] = [];
  for (const [i, id] of dependsOn.entries()) {
    const lower = id.toLowerCase();
    if (lower === taskId) errors.push({ path: `body/dependsOn/${i}`, message: 'a task cannot depend on itself' });
    else if (!project.taskIds.has(lower))
      errors.push({ path: `body/dependsOn/${i}`, message: `task ${id} is not a task of this project` });
  }
  if (ids.length > MAX_DEPENDENCIES)
    errors.push({ path: 'body/dependsOn', message: `at most ${MAX_DEPENDENCIES} dependencies` });
  if (errors.length) throw invalid('invalid_dependencies', 'dependsOn names tasks this task cannot depend on.', errors);
  const cycle = dependencyCycle(taskId, ids, project);
  if (cycle)
    throw invalid('dependency_cycle', 'These dependencies would make tasks wait for each other forever.', [
      { path: 'body/dependsOn', message: `dependency cycle: ${cycle.map(project.titleOf).join(' -> ')}` },
    ]);
  return ids;
}

/** A reason shown to the members whose claims it ends: whitespace is no reason. */
export function cancelReason(raw: string): string {
  const reason = raw.trim();
  if (!reason)
    throw invalid('reason_required', 'A cancellation needs a reason.', [
      { path: 'body/reason', message: 'must not be blank' },
    ]);
  return reason;
}
