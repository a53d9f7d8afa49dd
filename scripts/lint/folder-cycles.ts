// Fails when the folders of src/ import each other in a circle (claims → jobs → claims), which
// dependency-cruiser's own cycle rule cannot see: it checks modules, and a folder cycle may pass
// through different files on each side. Reads dependency-cruiser's JSON for the graph collapsed to
// one node per folder (`depcruise src --collapse '^src/[^/]+/' -T json`) on standard input.
interface CruiseResult {
  modules: { source: string; dependencies: { resolved: string }[] }[];
}

// Standard input is read as a stream, not with readFileSync(0, 'utf8'): on a pipe whose writer is
// still writing, Node 24's UTF-8 fast path for readFileSync aborted the process now and then
// ("malloc(): invalid size"), failing the lint with nothing wrong in the code.
const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const result = JSON.parse(Buffer.concat(chunks).toString('utf8')) as CruiseResult;
const isFolder = (path: string) => /^src\/[^/]+\/$/.test(path);
const edges = new Map<string, string[]>();
for (const m of result.modules) {
  if (!isFolder(m.source)) continue;
  edges.set(
    m.source,
    m.dependencies.map((d) => d.resolved).filter((to) => isFolder(to) && to !== m.source),
  );
}

// Tarjan's strongly connected components: any component with more than one folder is a cycle.
let index = 0;
const order = new Map<string, number>();
const low = new Map<string, number>();
const stack: string[] = [];
const onStack = new Set<string>();
const cycles: string[][] = [];

function visit(node: string): void {
  order.set(node, index);
  low.set(node, index);
  index++;
  stack.push(node);
  onStack.add(node);
  for (const next of edges.get(node) ?? []) {
    if (!order.has(next)) {
      visit(next);
      low.set(node, Math.min(low.get(node) ?? 0, low.get(next) ?? 0));
    } else if (onStack.has(next)) {
      low.set(node, Math.min(low.get(node) ?? 0, order.get(next) ?? 0));
    }
  }
  if (low.get(node) === order.get(node)) {
    const component: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop();
      if (member === undefined) break;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1) cycles.push(component.sort());
  }
}

for (const node of [...edges.keys()].sort()) if (!order.has(node)) visit(node);

if (cycles.length) {
  console.error('Folders that import each other in a circle:');
  for (const cycle of cycles) {
    const inCycle = new Set(cycle);
    console.error(`- ${cycle.join(', ')}`);
    for (const from of cycle) {
      const to = (edges.get(from) ?? []).filter((t) => inCycle.has(t));
      if (to.length) console.error(`    ${from} imports ${to.join(', ')}`);
    }
  }
  process.exit(1);
}
console.log(`no folder cycles among ${edges.size} folders of src/`);
