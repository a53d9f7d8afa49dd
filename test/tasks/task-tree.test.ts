import t from 'tap';
import {
  MAX_TREE_DEPTH,
  MAX_TREE_NODES,
  flattenTaskTree,
  type FlatTask,
  type TaskNodeInput,
} from '../../src/tasks/task-tree.js';

// flattenTaskTree is a pure function: validation and flattening of a TaskNode forest, no database.

const ids = () => {
  let n = 0;
  return () => `id-${++n}`;
};

const flat = (roots: TaskNodeInput[], baseDepth = -1) => {
  const result = flattenTaskTree(roots, baseDepth, ids());
  if (!result.ok) throw new Error(`unexpected errors: ${JSON.stringify(result.errors)}`);
  return result.tasks;
};

const errorsOf = (roots: TaskNodeInput[], baseDepth = -1) => {
  const result = flattenTaskTree(roots, baseDepth, ids());
  if (result.ok) throw new Error('expected the tree to be refused');
  return result.errors;
};

/** A chain of `levels` nested tasks. */
const chain = (levels: number): TaskNodeInput => {
  let node: TaskNodeInput = { title: `level ${levels}` };
  for (let i = levels - 1; i >= 1; i--) node = { title: `level ${i}`, children: [node] };
  return node;
};

t.test('flattens parents before children, with depth, leaves and defaults', async (t) => {
  const tasks = flat([
    { title: 'Root', children: [{ title: 'A' }, { title: 'B', children: [{ title: 'B1' }] }] },
    {
      title: 'Solo',
      description: 'd',
      weight: 5,
      skills: [' Design ', 'design', 'SQL'],
      slots: 3,
      requiredAccepts: 2,
      priority: -4,
    },
  ]);
  t.same(
    tasks.map((x) => [x.id, x.title, x.parentId, x.depth, x.isLeaf]),
    [
      ['id-1', 'Root', null, 0, false],
      ['id-2', 'A', 'id-1', 1, true],
      ['id-3', 'B', 'id-1', 1, false],
      ['id-4', 'B1', 'id-3', 2, true],
      ['id-5', 'Solo', null, 0, true],
    ],
  );
  t.match(tasks[0], {
    description: '',
    weight: 1,
    skills: [],
    slots: 1,
    requiredAccepts: 1,
    priority: 0,
    dependsOnNew: [],
    dependsOnExisting: [],
  });
  t.match(tasks[4], {
    description: 'd',
    weight: 5,
    skills: ['design', 'sql'],
    slots: 3,
    requiredAccepts: 2,
    priority: -4,
  });
});

t.test('baseDepth places the forest under an existing parent', async (t) => {
  const tasks = flat([{ title: 'X', children: [{ title: 'Y' }] }], 3);
  t.same(
    tasks.map((x) => x.depth),
    [4, 5],
  );
  t.equal(tasks[0]!.parentId, null, 'the caller attaches the roots to the parent');
});

t.test('dependsOn resolves keys in the request and passes task ids through', async (t) => {
  const existing = 'AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE';
  const tasks = flat([
    { key: 'spec', title: 'Spec' },
    { key: 'build', title: 'Build', dependsOn: ['spec', 'spec', existing, existing.toLowerCase()] },
    { title: 'Ship', dependsOn: ['build', 'child'], children: [{ key: 'child', title: 'Child', dependsOn: ['spec'] }] },
  ]);
  const byTitle = (title: string) => tasks.find((x) => x.title === title) as FlatTask;
  t.same(byTitle('Build').dependsOnNew, [byTitle('Spec').id], 'duplicates collapse');
  t.same(byTitle('Build').dependsOnExisting, [existing.toLowerCase()], 'ids are normalised to lower case');
  t.same(
    byTitle('Ship').dependsOnNew,
    [byTitle('Build').id, byTitle('Child').id],
    'a parent may depend on its own child key',
  );
  t.same(byTitle('Child').dependsOnNew, [byTitle('Spec').id]);
  t.same(byTitle('Spec').dependsOnNew, []);
});

t.test('unknown and duplicate keys and self-dependencies are reported with their paths', async (t) => {
  t.same(errorsOf([{ title: 'A', dependsOn: ['ghost'] }]), [
    { path: 'body/tasks/0/dependsOn/0', message: 'unknown key "ghost"' },
  ]);
  t.same(
    errorsOf([
      { key: 'a', title: 'A' },
      { title: 'P', children: [{ key: 'a', title: 'A again' }] },
    ]),
    [{ path: 'body/tasks/1/children/0/key', message: 'key "a" is used twice' }],
  );
  t.same(errorsOf([{ key: 'me', title: 'Me', dependsOn: ['me'] }]), [
    { path: 'body/tasks/0/dependsOn/0', message: 'a task cannot depend on itself' },
  ]);
  t.same(
    errorsOf([{ title: 'A', dependsOn: ['not-a-uuid-0000'] }])[0]!.path,
    'body/tasks/0/dependsOn/0',
    'something that is neither a key nor an id',
  );

  const several = errorsOf([
    { key: 'x', title: 'X', dependsOn: ['nope'] },
    { key: 'x', title: 'X2', children: [{ title: 'C', dependsOn: ['x', 'missing'] }] },
  ]);
  t.same(
    several.map((e) => e.path).sort(),
    ['body/tasks/0/dependsOn/0', 'body/tasks/1/children/0/dependsOn/1', 'body/tasks/1/key'],
    'every problem at once',
  );
});

t.test('dependency cycles are refused', async (t) => {
  const two = errorsOf([
    { key: 'a', title: 'A', dependsOn: ['b'] },
    { key: 'b', title: 'B', dependsOn: ['a'] },
  ]);
  t.equal(two.length, 1);
  t.equal(two[0]!.path, 'body/tasks');
  t.match(two[0]!.message, /^dependency cycle: "A" -> "B" -> "A"$/);

  const three = errorsOf([
    { key: 'a', title: 'A', dependsOn: ['c'] },
    { key: 'b', title: 'B', dependsOn: ['a'] },
    { title: 'P', children: [{ key: 'c', title: 'C', dependsOn: ['b'] }] },
    { key: 'd', title: 'D', dependsOn: ['a'] },
  ]);
  t.match(
    three[0]!.message,
    /dependency cycle: .*"A".*"C".*"B"|dependency cycle: .*"B".*"A".*"C"|dependency cycle: .*"C".*"B".*"A"/,
  );

  // A parent waits for its children: a task depending on its own new ancestor waits forever.
  const ancestor = errorsOf([
    { key: 'root', title: 'Root', children: [{ title: 'Mid', children: [{ title: 'Leaf', dependsOn: ['root'] }] }] },
  ]);
  t.match(ancestor, [{ path: 'body/tasks', message: /^dependency cycle: .*"Leaf".*"Root"/ }]);
  // Waiting for one's own descendant is redundant, not a cycle.
  t.equal(flat([{ title: 'Root', dependsOn: ['leaf'], children: [{ key: 'leaf', title: 'Leaf' }] }]).length, 2);

  // A diamond is not a cycle.
  t.equal(
    flat([
      { key: 'a', title: 'A' },
      { key: 'b', title: 'B', dependsOn: ['a'] },
      { key: 'c', title: 'C', dependsOn: ['a'] },
      { key: 'd', title: 'D', dependsOn: ['b', 'c'] },
    ]).length,
    4,
  );
});

t.test("depth: at most MAX_TREE_DEPTH levels, counted from the project's top-level tasks", async (t) => {
  t.equal(MAX_TREE_DEPTH, 8);
  t.equal(flat([chain(MAX_TREE_DEPTH)]).length, MAX_TREE_DEPTH);
  const tooDeep = errorsOf([chain(MAX_TREE_DEPTH + 1)]);
  t.same(tooDeep, [
    {
      path: `body/tasks/0${'/children/0'.repeat(MAX_TREE_DEPTH)}`,
      message: `the tree is deeper than ${MAX_TREE_DEPTH} levels`,
    },
  ]);
  // Under a parent the levels it already has count: a tree grown a request at a time is as shallow.
  const under = flat([chain(MAX_TREE_DEPTH - 6)], 5);
  t.same([under[0]!.depth, under.at(-1)!.depth], [6, MAX_TREE_DEPTH - 1]);
  t.same(errorsOf([chain(MAX_TREE_DEPTH - 5)], 5), [
    {
      path: `body/tasks/0${'/children/0'.repeat(MAX_TREE_DEPTH - 6)}`,
      message: `the tree is deeper than ${MAX_TREE_DEPTH} levels`,
    },
  ]);
  t.same(errorsOf([{ title: 'below the deepest level' }], MAX_TREE_DEPTH - 1), [
    { path: 'body/tasks/0', message: `the tree is deeper than ${MAX_TREE_DEPTH} levels` },
  ]);
});

t.test('size: at most MAX_TREE_NODES tasks per request, counted across the whole forest', async (t) => {
  t.equal(MAX_TREE_NODES, 5000);
  const leaves = (n: number) => Array.from({ length: n }, (_, i) => ({ title: `T${i}` }));
  t.equal(flat(leaves(MAX_TREE_NODES)).length, MAX_TREE_NODES);
  t.same(errorsOf(leaves(MAX_TREE_NODES + 1)), [
    { path: 'body/tasks', message: `the tree has ${MAX_TREE_NODES + 1} tasks; at most ${MAX_TREE_NODES} per request` },
  ]);
  const nested = errorsOf([
    { title: 'A', children: leaves(2500) },
    { title: 'B', children: leaves(2500) },
  ]);
  t.match(nested[0]!.message, /the tree has 5002 tasks/);
});

t.test('long dependency chains and cycles do not overflow the stack', async (t) => {
  const n = MAX_TREE_NODES;
  const line = Array.from({ length: n }, (_, i) => ({
    key: `k${i}`,
    title: `T${i}`,
    ...(i > 0 ? { dependsOn: [`k${i - 1}`] } : {}),
  }));
  t.equal(flat(line).length, n);
  line[0] = { key: 'k0', title: 'T0', dependsOn: [`k${n - 1}`] };
  const errors = errorsOf(line);
  t.equal(errors.length, 1);
  t.match(errors[0]!.message, /^dependency cycle:/);
});

t.test('uses random UUIDs by default', async (t) => {
  const result = flattenTaskTree([{ title: 'A' }, { title: 'B' }]);
  t.ok(result.ok);
  if (result.ok) {
    t.match(result.tasks[0]!.id, /^[0-9a-f-]{36}$/);
    t.not(result.tasks[0]!.id, result.tasks[1]!.id);
  }
});
