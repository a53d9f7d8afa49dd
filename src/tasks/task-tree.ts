import { randomUUID } from 'node:crypto';
import type { FieldError } from '../errors.js';
import { normalizeSkills } from '../accounts/skills.js';
import { UUID } from '../infra/uuid.js';

// Task-tree validation and flattening, as a plain function: no database, no HTTP.
// Limits are part of the public contract (see the OpenAPI description of TaskNode).
/** Levels of a project's task tree, counted from its top-level tasks, however it was built up. */
export const MAX_TREE_DEPTH = 8;
/** Tasks one request may create. */
export const MAX_TREE_NODES = 5000;
/**
 * Tasks one project may hold, cancelled ones included. With the depth limit, it bounds what the
 * tree walks (cancelling a subtree, completing parents) and a project's lists, whatever number of
 * requests built the tree.
 */
export const MAX_PROJECT_TASKS = 20_000;
export const MAX_DEPENDENCIES = 50;

export interface TaskNodeInput {
  key?: string;
  title: string;
  description?: string;
  weight?: number;
  skills?: string[];
  slots?: number;
  requiredAccepts?: number;
  priority?: number;
  dependsOn?: string[];
  children?: TaskNodeInput[];
}

export interface FlatTask {
  id: string;
  parentId: string | null;
  depth: number;
  isLeaf: boolean;
  title: string;
  description: string;
  weight: number;
  skills: string[];
  slots: number;
  requiredAccepts: number;
  priority: number;
  /** Ids of tasks created in the same request that this one depends on. */
  dependsOnNew: string[];
  /** Task ids outside the request (must be tasks of the same project; the caller checks). */
  dependsOnExisting: string[];
}

export type TreeResult = { ok: true; tasks: FlatTask[] } | { ok: false; errors: FieldError[] };

/**
 * Flattens a TaskNode forest into rows (parents before children), resolving `key` references.
 * A `dependsOn` entry is a key from this request or the id of an existing task. Reports every
 * problem at once: duplicate or unknown keys, dependency cycles, trees too deep or too large.
 * `baseDepth` is the depth of the parent the forest hangs under (-1 for the project root).
 */
export function flattenTaskTree(roots: TaskNodeInput[], baseDepth = -1, newId: () => string = randomUUID): TreeResult {
  const errors: FieldError[] = [];
  const tasks: FlatTask[] = [];
  const keyToId = new Map<string, string>();
  const pending: { task: FlatTask; refs: string[]; path: string }[] = [];

  const visit = (node: TaskNodeInput, path: string, parentId: string | null, depth: number) => {
    if (tasks.length >= MAX_TREE_NODES) return;
    const children = node.children ?? [];
    const task: FlatTask = {
      id: newId(),
      parentId,
      depth,
      isLeaf: children.length === 0,
      title: node.title,
      description: node.description ?? '',
      weight: node.weight ?? 1,
      skills: normalizeSkills(node.skills ?? []),
      slots: node.slots ?? 1,
      requiredAccepts: node.requiredAccepts ?? 1,
      priority: node.priority ?? 0,
      dependsOnNew: [],
      dependsOnExisting: [],
    };
    // Absolute, not per request: a tree grown one request at a time stays as shallow.
    if (depth >= MAX_TREE_DEPTH) {
      errors.push({ path, message: `the tree is deeper than ${MAX_TREE_DEPTH} levels` });
      return;
    }
    if (node.key !== undefined) {
      if (keyToId.has(node.key)) errors.push({ path: `${path}/key`, message: `key "${node.key}" is used twice` });
      else keyToId.set(node.key, task.id);
    }
    tasks.push(task);
    pending.push({ task, refs: node.dependsOn ?? [], path });
    for (const [i, child] of children.entries()) visit(child, `${path}/children/${i}`, task.id, depth + 1);
  };

  const countNodes = (nodes: TaskNodeInput[]): number =>
    nodes.reduce((n, node) => n + 1 + countNodes(node.children ?? []), 0);
  const total = countNodes(roots);
  if (total > MAX_TREE_NODES)
    return {
      ok: false,
      errors: [{ path: 'body/tasks', message: `the tree has ${total} tasks; at most ${MAX_TREE_NODES} per request` }],
    };

  for (const [i, root] of roots.entries()) visit(root, `body/tasks/${i}`, null, baseDepth + 1);

  for (const { task, refs, path } of pending) {
    refs.forEach((ref, i) => {
      const id = keyToId.get(ref);
      if (id === task.id) errors.push({ path: `${path}/dependsOn/${i}`, message: 'a task cannot depend on itself' });
      else if (id) task.dependsOnNew.push(id);
      else if (UUID.test(ref)) task.dependsOnExisting.push(ref.toLowerCase());
      else errors.push({ path: `${path}/dependsOn/${i}`, message: `unknown key "${ref}"` });
    });
    task.dependsOnNew = [...new Set(task.dependsOnNew)];
    task.dependsOnExisting = [...new Set(task.dependsOnExisting)];
  }
  if (errors.length === 0) {
    // A parent waits for its children, so a task depending on its own new ancestor is a cycle too.
    const cycle = findCycle(
      waitGraph(
        tasks.flatMap((t) => t.dependsOnNew.map((dependsOnId) => ({ taskId: t.id, dependsOnId }))),
        tasks,
      ),
    );
    if (cycle)
      errors.push({
        path: 'body/tasks',
        message: `dependency cycle: ${cycle.map((id) => titleOf(tasks, id)).join(' -> ')}`,
      });
  }
  return errors.length ? { ok: false, errors } : { ok: true, tasks };
}

const titleOf = (tasks: FlatTask[], id: string) => JSON.stringify(tasks.find((t) => t.id === id)?.title ?? id);

/**
 * Finds one cycle in a graph given as each node's outgoing edges (a task to what it waits for), or
 * null, searching from `starts` (every node by default); the cycle is returned as a path that starts and
 * ends on the same node.
 * Iterative DFS: deep chains of thousands of tasks must not overflow the stack.
 */
export function findCycle(
  edges: ReadonlyMap<string, readonly string[]>,
  starts: Iterable<string> = edges.keys(),
): string[] | null {
  const state = new Map<string, 1 | 2>(); // 1 = on the current path, 2 = finished
  for (const start of starts) {
    if (state.has(start)) continue;
    const stack: { id: string; next: number }[] = [{ id: start, next: 0 }];
    state.set(start, 1);
    for (let frame = stack.at(-1); frame; frame = stack.at(-1)) {
      const dep = edges.get(frame.id)?.[frame.next];
      if (dep === undefined) {
        state.set(frame.id, 2);
        stack.pop();
        continue;
      }
      frame.next++;
      const s = state.get(dep);
      if (s === 1) {
        const from = stack.findIndex((f) => f.id === dep);
        return [...stack.slice(from).map((f) => f.id), dep];
      }
      if (s === undefined) {
        state.set(dep, 1);
        stack.push({ id: dep, next: 0 });
      }
    }
  }
  return null;
}

type Edge = { taskId: string; dependsOnId: string };
type TreeLink = { id: string; parentId: string | null };

/**
 * What each task waits for, as a graph for findCycle: every task waits for its dependencies, and a
 * parent for its children (it is done only when they are), so a task depending on its own ancestor
 * is a cycle too.
 */
function waitGraph(dependencies: Iterable<Edge>, tree: Iterable<TreeLink>): Map<string, string[]> {
  const edges = new Map<string, string[]>();
  const add = (from: string, to: string) => {
    const list = edges.get(from);
    if (list) list.push(to);
    else edges.set(from, [to]);
  };
  for (const d of dependencies) add(d.taskId, d.dependsOnId);
  for (const t of tree) if (t.parentId) add(t.parentId, t.id);
  return edges;
}

/**
 * A cycle the changed task runs into once its dependencies are replaced by `dependsOn`, or null.
 * Searched from the changed task only: what it cannot reach, it cannot close a cycle with.
 */
export function dependencyCycle(
  taskId: string,
  dependsOn: readonly string[],
  project: { dependencies: readonly Edge[]; tree: readonly TreeLink[] },
): string[] | null {
  const kept = project.dependencies.filter((d) => d.taskId !== taskId);
  const changed = dependsOn.map((dependsOnId) => ({ taskId, dependsOnId }));
  return findCycle(waitGraph([...kept, ...changed], project.tree), [taskId]);
}

/**
 * A cycle that new tasks close once hung into an existing project, or null. Only tasks added under
 * an existing parent can: an existing task that reaches that parent (depending on it, or on one of
 * its ancestors) would wait for the new tasks, so a new task must not wait for it.
 */
export function forestCycle(
  tasks: readonly FlatTask[],
  project: { dependencies: readonly Edge[]; tree: readonly TreeLink[] },
): string[] | null {
  const added = tasks.flatMap((t) =>
    [...t.dependsOnNew, ...t.dependsOnExisting].map((dependsOnId) => ({ taskId: t.id, dependsOnId })),
  );
  const graph = waitGraph([...project.dependencies, ...added], [...project.tree, ...tasks]);
  return findCycle(
    graph,
    tasks.map((t) => t.id),
  );
}
