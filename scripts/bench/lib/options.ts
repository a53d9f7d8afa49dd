// Command-line options and the data sizes of a full and a quick run.

export interface Sizes {
  /** Concurrent HTTP connections and, for the SQL limits, concurrent Postgres connections. */
  connections: number;
  /** Users per connection for claim_next: requests rotate over them (see docs/BENCHMARKS.md). */
  claimUsersPerConnection: number;
  claimTasks: number;
  /** Seconds per measured run, after `warmupSeconds` of unmeasured load on the same endpoint. */
  claimSeconds: number;
  readSeconds: number;
  warmupSeconds: number;
  /** Alternating rounds of each comparison; each side keeps its best. */
  rounds: number;
  readUsers: number;
  breakdownTasks: number;
  breakdownRepetitions: number;
  settleRows: number;
  settleMembers: number;
  /** Claims on short leases in lease_expiry (and again in no_redis). */
  leaseClaims: number;
  /** The circle of circle_leaderboard and circle_health: its members and contribution rows. */
  circleMembers: number;
  circleRows: number;
  /** Sequential health requests whose median latency circle_health reports. */
  healthRequests: number;
}

export interface Options {
  quick: boolean;
  jsonFile: string | null;
  only: Set<string> | null;
  keepDb: boolean;
  build: boolean;
  cpuProfileDir: string | null;
  databaseName: string;
  queuePrefix: string;
  sizes: Sizes;
}

// no_redis restarts the service without Redis, so it runs last.
export const SCENARIOS = [
  'claim_next',
  'task_board',
  'task_read',
  'my_tasks',
  'checkin',
  'breakdown',
  'settle',
  'circle_leaderboard',
  'circle_health',
  'lease_expiry',
  'no_redis',
] as const;

const FULL: Sizes = {
  connections: 50,
  claimUsersPerConnection: 100,
  claimTasks: 200_000,
  claimSeconds: 15,
  readSeconds: 15,
  warmupSeconds: 3,
  rounds: 2,
  readUsers: 500,
  breakdownTasks: 5_000,
  breakdownRepetitions: 5,
  settleRows: 1_000_000,
  settleMembers: 100_000,
  leaseClaims: 20_000,
  circleMembers: 100_000,
  circleRows: 1_000_000,
  healthRequests: 5,
};

const QUICK: Sizes = {
  connections: 50,
  claimUsersPerConnection: 10,
  claimTasks: 50_000,
  claimSeconds: 3,
  readSeconds: 3,
  warmupSeconds: 1,
  rounds: 1,
  readUsers: 100,
  breakdownTasks: 1_000,
  breakdownRepetitions: 2,
  settleRows: 20_000,
  settleMembers: 2_000,
  leaseClaims: 2_000,
  circleMembers: 2_000,
  circleRows: 20_000,
  healthRequests: 3,
};

const USAGE = `usage: npm run bench -- [--quick] [--json FILE] [--only a,b] [--keep-db] [--no-build] [--cpu-prof DIR]
  --quick        every scenario briefly, with small data (CI)
  --json FILE    also write the results as JSON
  --only LIST    run only these scenarios: ${SCENARIOS.join(', ')}
  --keep-db      leave the bench database in place afterwards (for EXPLAIN ANALYZE)
  --no-build     use the existing dist/ instead of running npm run build
  --cpu-prof DIR write V8 CPU profiles of the API and worker processes into DIR
env: BENCH_DATABASE (default circle_actions_bench), BENCH_QUEUE_PREFIX (default cabench)`;

export function parseOptions(argv: string[]): Options {
  const opts: Options = {
    quick: false,
    jsonFile: null,
    only: null,
    keepDb: false,
    build: true,
    cpuProfileDir: null,
    databaseName: process.env.BENCH_DATABASE || 'circle_actions_bench',
    queuePrefix: process.env.BENCH_QUEUE_PREFIX || 'cabench',
    sizes: FULL,
  };
  const value = (i: number, flag: string) => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value\n${USAGE}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    switch (arg) {
      case '--quick':
        opts.quick = true;
        break;
      case '--json':
        opts.jsonFile = value(i++, arg);
        break;
      case '--only': {
        const names = value(i++, arg)
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const unknown = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
        if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}\n${USAGE}`);
        opts.only = new Set(names);
        break;
      }
      case '--keep-db':
        opts.keepDb = true;
        break;
      case '--no-build':
        opts.build = false;
        break;
      case '--cpu-prof':
        opts.cpuProfileDir = value(i++, arg);
        break;
      case '--help':
      case '-h':
        console.log(USAGE);
        return process.exit(0);
      default:
        throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  if (!/^[a-z_][a-z0-9_]*$/.test(opts.databaseName))
    throw new Error('BENCH_DATABASE must be a plain lower-case identifier');
  if (opts.quick) opts.sizes = QUICK;
  return opts;
}
