import { readFile } from 'node:fs/promises';
import t from 'tap';
import { SCHEMA_FILE, clientSchemaSource } from '../../scripts/generate-client.js';

// The typed client's types are generated from the OpenAPI document and committed: a change to a
// route's schema without `npm run client:generate` fails here (and so in CI).

t.test('src/client/schema.d.ts matches the OpenAPI document', async (t) => {
  const committed = await readFile(SCHEMA_FILE, 'utf8');
  const fresh = await clientSchemaSource();
  t.ok(committed === fresh, 'src/client/schema.d.ts is out of date: run `npm run client:generate` and commit it');
  // Generation is deterministic: the same document gives the same bytes.
  t.equal(await clientSchemaSource(), fresh);
});
