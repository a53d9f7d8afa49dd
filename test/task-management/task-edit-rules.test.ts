import t from 'tap';
import { DomainError } from '../../src/errors.js';
import { cancelReason, checkDependencies, planTaskEdit } from '../../src/task-management/task-edit-rules.js';
import { dependencyCycle, findCycle, forestCycle, type FlatTask } from '../../src/tasks/task-tree.js';

// The rules of changing a task after posting, without a database.

const leaf = { status: 'open', isLeaf: true, liveClaims: 2 } as const;
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return err.code;
    throw err;
  }
  return 'none';
};

t.test('planTaskEdit maps fields to columns and refuses what would rewrite history', async (t) => {
  t.same(planTaskEdit(leaf, { title: 'New', skills: ['Writing', 'writing'], requiredAccepts: 1, weight: 7 }), {
    title: 'New',
    skills: ['writing'],
    required_accepts: 1,
    weight: 7,
  });
  t.same(planTaskEdit(leaf, {}), {}, 'an empty edit changes nothing');
  t.same(planTaskEdit(leaf, { slots: 2 }), { slots: 2 }, 'slots down to the live claims');
  t.equal(
    codeOf(() => planTaskEdit(leaf, { slots: 1 })),
    'slots_below_live_claims',
  );
  t.equal(
    codeOf(() => planTaskEdit({ ...leaf, status: 'done' }, { title: 'x' })),
    'task_not_open',
  );
  t.equal(
    codeOf(() => planTaskEdit({ ...leaf, status: 'cancelled' }, { title: 'x' })),
    'task_not_open',
  );
  const parent = { status: 'open', isLeaf: false, liveClaims: 0 } as const;
  t.same(planTaskEdit(parent, { title: 'Chapter', description: 'All of it' }), {
    title: 'Chapter',
    description: 'All of it',
  });
  for (const field of ['skills', 'priority', 'slots', 'requiredAccepts', 'weight'] as const) {
    const edit = { [field]: field === 'skills' ? ['x'] : 1 };
    t.equal(
      codeOf(() => planTaskEdit(parent, edit)),
      'task_not_leaf',
      `${field} on a parent`,
    );
  }
});

t.test('findCycle and dependencyCycle', async (t) => {
  t.equal(
    findCycle(
      new Map([
        ['a', ['b']],
        ['b', ['c']],
      ]),
    ),
    null,
  );
  t.same(
    findCycle(
      new Map([
        ['a', ['b']],
        ['b', ['a']],
      ]),
    ),
    ['a', 'b', 'a'],
  );
  t.equal(
    findCycle(
      new Map([
        ['a', ['a']],
        ['b', []],
      ]),
      ['b'],
    ),
    null,
    'only from the given starts',
  );
  const project = {
    dependencies: [
      { taskId: 'b', dependsOnId: 'a' },
      { taskId: 'c', dependsOnId: 'b' },
    ],
    tree: [
      { id: 'p', parentId: null },
      { id: 'k', parentId: 'p' },
    ],
  };
  t.same(dependencyCycle('a', ['c'], project), ['a', 'c', 'b', 'a'], 'a -> c -> b -> a');
  t.equal(dependencyCycle('b', ['c'].slice(1), project), null, 'removing is never a cycle');
  t.same(dependencyCycle('k', ['p'], project), ['k', 'p', 'k'], 'a child waiting for its parent');
  t.equal(dependencyCycle('p', ['k'], project), null, 'a parent waiting for its child is redundant, not a cycle');
  t.equal(dependencyCycle('a', ['p'], project), null);

  // New tasks hung under the existing 'k' (child of 'p'): 'x' waits for 'n1' (its parent 'k').
  const hung = { ...project, dependencies: [...project.dependencies, { taskId: 'x', dependsOnId: 'k' }] };
  const task = (id: string, parentId: string, dependsOnNew: string[], dependsOnExisting: string[]) =>
    ({ id, parentId, dependsOnNew, dependsOnExisting }) as unknown as FlatTask;
  t.same(forestCycle([task('n1', 'k', [], ['x'])], hung), ['n1', 'x', 'k', 'n1'], 'a new task waiting for a waiter');
  t.same(
    forestCycle([task('n1', 'k', [], ['p'])], hung),
    ['n1', 'p', 'k', 'n1'],
    'a new task waiting for its grandparent',
  );
  t.same(
    forestCycle([task('n1', 'k', [], []), task('n2', 'n1', [], ['x'])], hung)?.slice(0, 2),
    ['n1', 'n2'],
    'a new grandchild waiting for a waiter',
  );
  t.equal(forestCycle([task('n1', 'k', [], ['a', 'c'])], hung), null, 'unrelated tasks are fine');
  t.equal(forestCycle([task('n1', 'p', [], ['k'])], hung), null, 'a sibling that waits for nothing new is fine');
});

t.test('checkDependencies', async (t) => {
  const ids = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'] as const;
  const project = {
    taskIds: new Set(ids),
    dependencies: [{ taskId: ids[1], dependsOnId: ids[0] }],
    tree: [],
    titleOf: (id: string) => (id === ids[0] ? '"One"' : '"Two"'),
  };
  t.same(checkDependencies(ids[1], [ids[0].toUpperCase(), ids[0]], project), [ids[0]], 'lower-cased, once');
  t.equal(
    codeOf(() => checkDependencies(ids[0], [ids[0]], project)),
    'invalid_dependencies',
  );
  t.equal(
    codeOf(() => checkDependencies(ids[0], ['33333333-3333-4333-8333-333333333333'], project)),
    'invalid_dependencies',
  );
  try {
    checkDependencies(ids[0], [ids[1]], project);
    t.fail('a cycle must be refused');
  } catch (err) {
    t.match(err, { code: 'dependency_cycle', kind: 'invalid', errors: [{ message: /"One" -> "Two" -> "One"/ }] });
  }
  t.equal(
    codeOf(() => cancelReason('  ')),
    'reason_required',
  );
  t.equal(cancelReason(' Out of scope '), 'Out of scope');
});
