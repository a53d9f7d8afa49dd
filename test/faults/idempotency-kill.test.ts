import { sql } from 'kysely';
import t from 'tap';
import { REDIS_URL, registerUser } from '../helper.js';
import { assertInvariants, faultApp, http, serviceEnv, startService, summary, until } from './cluster.js';

// An API process SIGKILLed after a request's change committed and before it stored the response
// for its Idempotency-Key. The client never got an answer and retries with the same key once the
// key counts as abandoned: the change must not be applied a second time.

t.test('SIGKILL between the commit and storing the response: the retry never applies the change again', async (t) => {
  const env = await faultApp(t);
  const { db } = env;
  const owner = await registerUser(env.app, 'owner');
  // Storing the response hangs (and would fail), so the process is killed with the change
  // committed and the response not stored, every time.
  await sql`
    CREATE FUNCTION hold_idempotent_response() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_sleep(60);
      RAISE EXCEPTION 'the process was meant to be killed by now';
    END $$;
    CREATE TRIGGER hold_idempotent_response BEFORE UPDATE OF response_status ON idempotency_keys
      FOR EACH ROW WHEN (NEW.response_status IS NOT NULL) EXECUTE FUNCTION hold_idempotent_response();
  `.execute(db);

  const envVars = serviceEnv(env, REDIS_URL);
  const api = await startService(t, 'api', envVars, 'api-a');
  const request = {
    token: owner.token,
    body: { name: 'Readers', joinPolicy: 'open' },
    headers: { 'idempotency-key': 'k-1' },
  };
  const inFlight = http(api.url, 'POST', '/v1/circles', { ...request, timeoutMs: 60_000 });

  const storing = await until('the response to be on its way to the key', async () => {
    const rows = await sql<{ pid: number }>`
      SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE 'update "idempotency_keys"%'`.execute(
      db,
    );
    return rows.rows[0]?.pid;
  });
  const committed = await db.selectFrom('circles').select('id').execute();
  t.equal(committed.length, 1, 'the change had committed');
  await api.kill('SIGKILL');
  t.equal((await inFlight).status, 0, 'the client got no answer');
  // A dead client's statement would run on; end it as a dropped connection would.
  await sql`SELECT pg_terminate_backend(${storing}::int)`.execute(db);
  await sql`DROP TRIGGER hold_idempotent_response ON idempotency_keys`.execute(db);

  const next = await startService(t, 'api', envVars, 'api-b');
  const early = await http(next.url, 'POST', '/v1/circles', request);
  t.equal(early.status, 409, 'within five minutes the first request may still be finishing');
  t.equal(early.body.code, 'idempotency_request_in_progress');

  await sql`UPDATE idempotency_keys SET created_at = now() - interval '6 minutes'`.execute(db);
  const retried = await http(next.url, 'POST', '/v1/circles', request);
  t.equal(retried.status, 409, `the abandoned key's change is not run again (${retried.status})`);
  t.equal(retried.body.code, 'idempotency_response_lost');
  t.match(retried.type, /^application\/problem\+json/);
  const circles = await db.selectFrom('circles').select('id').execute();
  t.same(circles, committed, 'still exactly the one circle');
  const violations = await assertInvariants(t, db, 'idempotency-kill');
  summary(t, 'idempotency-kill', { circles: circles.length, retry: retried.body.code, violations });
});
