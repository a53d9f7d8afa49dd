// `npm run check:invariants`: verifies the money, points and slot invariants on the database in
// DATABASE_URL and exits non-zero if any is broken, printing sample rows.
import { loadDatabaseUrl } from '../src/config.js';
import { createDb } from '../src/infra/postgres.js';
import { checkInvariants } from '../src/audit/invariants.js';

const databaseUrl = loadDatabaseUrl();
const db = createDb(databaseUrl, 2);
try {
  console.log(`checking invariants on ${new URL(databaseUrl).pathname.slice(1)}`);
  const results = await checkInvariants(db, (r, i, total) => {
    console.log(
      `[${i + 1}/${total}] ${r.name}: ${r.violations === 0 ? 'ok' : `VIOLATED (${r.violations} rows): ${r.description}`}`,
    );
    for (const sample of r.samples) console.log('    ', JSON.stringify(sample));
  });
  const broken = results.filter((r) => r.violations > 0).length;
  console.log(
    broken === 0 ? `all ${results.length} invariants hold` : `${broken} of ${results.length} invariants violated`,
  );
  process.exitCode = broken === 0 ? 0 : 1;
} finally {
  await db.destroy();
}
