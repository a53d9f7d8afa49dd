import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import t from 'tap';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../../src/infra/database-schema.js';
import { INVARIANT_NAMES, checkInvariants } from '../../src/audit/invariants.js';
import { settleProject } from '../../src/settlements/settle-project.js';
import { buildTestApp, call, createCircle, registerUser } from '../helper.js';
import { addTasks, claimTask, completeTask, createProject, joinMembers } from '../marketplace-helpers.js';
import { adjust, assertInvariants, requestSettlementId } from '../settlement-helpers.js';
import { childEnv } from '../service-process.js';
import { addDays } from '../../src/challenges/challenge-days.js';
import { deliverAttempt } from '../../src/webhooks/webhook-delivery.job.js';
import { createWebhook, messagesOf, relay, startReceiver } from '../webhooks/webhook-helpers.js';
import { foldCircleRollups } from '../../src/circle-health/rollup-fold.js';

// The invariant check itself: it passes on a healthy database, and each invariant is seen to
// fail when its promise is broken behind the service's back (in SQL, in a database of its own).
// Then the operator's command, `npm run check:invariants`, with its exit codes and progress lines.

class Rollback extends Error {}

/** Runs `breakIt` and the check in one transaction, then rolls it all back. */
async function violatedAfter(
  db: Parameters<typeof checkInvariants>[0],
  breakIt: (trx: Transaction<Database>) => Promise<void>,
): Promise<string[]> {
  let violated: string[] = [];
  await db
    .transaction()
    .execute(async (trx) => {
      await breakIt(trx);
      violated = (await checkInvariants(trx)).filter((r) => r.violations > 0).map((r) => r.name);
      throw new Rollback();
    })
    .catch((err: unknown) => {
      if (!(err instanceof Rollback)) throw err;
    });
  return violated;
}

function runCheckCommand(databaseUrl: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn('npm', ['run', '--silent', 'check:invariants'], {
      cwd: resolve('.'),
      env: childEnv({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('error', fail);
    child.once('exit', (code) => done({ code, stdout, stderr }));
  });
}

t.test('each invariant holds on a healthy database and is reported when broken', async (t) => {
  const { app, db, config } = await buildTestApp(t, { WEBHOOK_ALLOW_PRIVATE: 'true' });
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [ann, ben] = await joinMembers(app, circle.id, 2);
  const project = await createProject(app, owner, circle.id, { rewardPool: { amount: 100, unit: 'credits' } });
  const [done, released, spare] = await addTasks(app, owner, project.id, [
    { title: 'Done', weight: 3 },
    { title: 'Released' },
    { title: 'Spare', slots: 2 },
  ]);
  await completeTask(app, owner, ann!, done!.id);
  const releasedClaim = await claimTask(app, ben!, released!.id);
  t.equal((await call(app, 'POST', `/v1/claims/${releasedClaim.body.id}/release`, { token: ben!.token })).status, 200);
  const adjustment = await adjust(app, owner, project.id, ben!.id, 100, 'Organised the sprint');
  const settlementId = await requestSettlementId(app, owner, project.id);
  t.equal(await settleProject(db, settlementId), 'completed');
  const later = await createProject(app, owner, circle.id, {
    title: 'Still settling',
    rewardPool: { amount: 10, unit: 'credits' },
  });
  await adjust(app, owner, later.id, ann!.id, 1);
  const pendingId = await requestSettlementId(app, owner, later.id);
  const today = new Date().toISOString().slice(0, 10);
  const challenge = await call(app, 'POST', `/v1/circles/${circle.id}/challenges`, {
    token: owner.token,
    body: { title: 'Daily', startsOn: today, endsOn: addDays(today, 1), timezone: 'UTC', pointsPerCheckin: 7 },
  });
  const checkin = await call(app, 'POST', `/v1/challenges/${challenge.body.id}/checkins`, {
    token: ann!.token,
    body: { content: 'The passage that struck me today' },
  });
  t.equal(checkin.status, 201, 'a check-in, with its circle-level points');
  const annPayout = await db
    .selectFrom('payouts')
    .select('amount')
    .where('user_id', '=', ann!.id)
    .executeTakeFirstOrThrow();
  t.equal(annPayout.amount, 75, 'ann: 300 of 400 points of 100');
  // A webhook with one delivered message, and one disabled by hand.
  const receiver = await startReceiver(t);
  const hook = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.created'] });
  const stopped = await createWebhook(app, owner, circle.id, { url: receiver.url, events: ['project.created'] });
  await createProject(app, owner, circle.id, { title: 'Announced' });
  await relay(db, app.queues, config);
  const [message] = await messagesOf(db, hook.id);
  const ctx = { db, config, queues: app.queues, log: app.log };
  t.equal(await deliverAttempt(ctx, circle.id, message!.id, 1), 'succeeded', 'a delivered webhook message');
  t.equal(
    (
      await call(app, 'PATCH', `/v1/circles/${circle.id}/webhooks/${stopped.id}`, {
        token: owner.token,
        body: { enabled: false },
      })
    ).status,
    200,
  );
  // A circle of its own with folded rollups, so the breaks of the other circle's rows leave them be.
  const folded = await createCircle(app, owner);
  const [cat] = await joinMembers(app, folded.id, 1);
  const foldedProject = await createProject(app, owner, folded.id, { rewardPool: { amount: 10, unit: 'credits' } });
  const [foldedTask] = await addTasks(app, owner, foldedProject.id, [{ title: 'Folded task' }]);
  await claimTask(app, cat!, foldedTask!.id);
  await adjust(app, owner, foldedProject.id, cat!.id, 5);
  t.equal((await foldCircleRollups(db, folded.id)).rows, 2, "the claim and the adjustment folded into cat's day");

  await assertInvariants(t, db);
  t.same(
    [...INVARIANT_NAMES].sort(),
    [
      'account_balances_match_entries',
      'active_claims_hold_member_slots',
      'challenge_participants_match_checkins',
      'challenge_timezones_known',
      'checkin_points_match_checkins',
      'circle_rollups_match_source',
      'circle_timezones_known',
      'closed_challenges_summarised_once',
      'contributions_unchanged',
      'disabled_webhooks_have_their_event',
      'distinct_members_per_task',
      'inbox_events_name_their_member',
      'ledger_transactions_balanced',
      'one_checkin_per_member_day',
      'one_contribution_per_accepted_claim',
      'one_lease_reminder_per_lease',
      'one_live_claim_per_member_and_task',
      'payout_notices_match_payouts',
      'projects_settled_announced_once',
      'settlement_ledger_matches_payouts',
      'settlement_sums',
      'submitted_claims_queued_by_latest_submission',
      'task_blocked_ancestors_consistent',
      'task_blocking_deps_consistent',
      'task_slots_consistent',
      'unfinished_settlements_wrote_nothing',
      'webhook_attempts_numbered_without_gaps',
      'webhook_deliveries_match_their_endpoint',
      'webhook_events_carry_no_secret',
      'webhook_retired_secrets_well_formed',
    ],
    'the invariants under test',
  );

  const payoutTx = sql<string>`(SELECT id FROM ledger_transactions WHERE settlement_id = ${settlementId} AND kind = 'settlement_payout')`;
  const fundingTx = sql<string>`(SELECT id FROM ledger_transactions WHERE settlement_id = ${settlementId} AND kind = 'pool_funding')`;
  const account = (kind: string, ownerId: string) =>
    sql<string>`(SELECT id FROM ledger_accounts WHERE kind = ${kind} AND owner_id = ${ownerId})`;

  const breaks: [string, string, (trx: Transaction<Database>) => Promise<void>][] = [
    [
      'settlement_sums',
      'a settlement claiming to have distributed one unit more than its payouts',
      async (trx) => {
        await sql`UPDATE settlements SET distributed = distributed + 1, undistributed = undistributed - 1 WHERE id = ${settlementId}`.execute(
          trx,
        );
      },
    ],
    [
      'settlement_ledger_matches_payouts',
      'a unit moved from a member back to the pool, balanced and with balances kept in step',
      async (trx) => {
        await sql`UPDATE ledger_entries SET amount = amount - 1 WHERE transaction_id = ${payoutTx} AND account_id = ${account('member_balance', ann!.id)}`.execute(
          trx,
        );
        await sql`UPDATE ledger_entries SET amount = amount + 1 WHERE transaction_id = ${payoutTx} AND account_id = ${account('project_pool', project.id)}`.execute(
          trx,
        );
        await sql`UPDATE ledger_accounts SET balance = balance - 1 WHERE id = ${account('member_balance', ann!.id)}`.execute(
          trx,
        );
        await sql`UPDATE ledger_accounts SET balance = balance + 1 WHERE id = ${account('project_pool', project.id)}`.execute(
          trx,
        );
      },
    ],
    [
      'settlement_ledger_matches_payouts',
      'a unit moved from one payee to another, every sum and balance kept in step',
      async (trx) => {
        await sql`UPDATE ledger_entries SET amount = amount - 1 WHERE transaction_id = ${payoutTx} AND account_id = ${account('member_balance', ann!.id)}`.execute(
          trx,
        );
        await sql`UPDATE ledger_entries SET amount = amount + 1 WHERE transaction_id = ${payoutTx} AND account_id = ${account('member_balance', ben!.id)}`.execute(
          trx,
        );
        await sql`UPDATE ledger_accounts SET balance = balance - 1 WHERE id = ${account('member_balance', ann!.id)}`.execute(
          trx,
        );
        await sql`UPDATE ledger_accounts SET balance = balance + 1 WHERE id = ${account('member_balance', ben!.id)}`.execute(
          trx,
        );
      },
    ],
    [
      'unfinished_settlements_wrote_nothing',
      'a payout row of a settlement still pending (half a settlement)',
      async (trx) => {
        await sql`
        INSERT INTO payouts (settlement_id, circle_id, user_id, rank, points, amount, share_numerator, share_denominator, rounded_up, capped)
        VALUES (${pendingId}, ${circle.id}, ${ann!.id}, 1, 1, 10, 1, 1, false, false)`.execute(trx);
      },
    ],
    [
      'ledger_transactions_balanced',
      'an unbalanced entry (with its account balance kept in step)',
      async (trx) => {
        await sql`INSERT INTO ledger_entries (transaction_id, account_id, amount) VALUES (${fundingTx}, ${account('project_pool', project.id)}, 5)`.execute(
          trx,
        );
        await sql`UPDATE ledger_accounts SET balance = balance + 5 WHERE id = ${account('project_pool', project.id)}`.execute(
          trx,
        );
      },
    ],
    [
      'account_balances_match_entries',
      'a balance edited by hand',
      async (trx) => {
        await sql`UPDATE ledger_accounts SET balance = balance + 1 WHERE kind = 'owner_funding'`.execute(trx);
      },
    ],
    [
      'contributions_unchanged',
      'a contribution rewritten with the append-only trigger disabled',
      async (trx) => {
        await sql`ALTER TABLE contributions DISABLE TRIGGER contributions_append_only`.execute(trx);
        await sql`UPDATE contributions SET points = points + 1 WHERE id = ${Number(adjustment.body.id)}`.execute(trx);
        await sql`ALTER TABLE contributions ENABLE TRIGGER contributions_append_only`.execute(trx);
      },
    ],
    [
      'task_slots_consistent',
      'a live-claim count that no claim backs',
      async (trx) => {
        await sql`UPDATE tasks SET live_claims = live_claims + 1 WHERE id = ${spare!.id}`.execute(trx);
      },
    ],
    [
      'task_blocked_ancestors_consistent',
      'a top-level task counted as below a blocked one',
      async (trx) => {
        await sql`UPDATE tasks SET blocked_ancestors = 1 WHERE id = ${spare!.id}`.execute(trx);
      },
    ],
    [
      'task_blocking_deps_consistent',
      'a task unblocked while its dependency is still open',
      async (trx) => {
        await sql`INSERT INTO task_dependencies (task_id, depends_on_id) VALUES (${spare!.id}, ${released!.id})`.execute(
          trx,
        );
      },
    ],
    [
      'one_live_claim_per_member_and_task',
      'two live claims of one member on one task (its unique index dropped), slots counted',
      async (trx) => {
        await sql`DROP INDEX claims_one_per_member_and_task`.execute(trx);
        await sql`
        INSERT INTO claims (circle_id, project_id, task_id, user_id, status, member_slot, expires_at)
        SELECT circle_id, project_id, id, ${ben!.id}, 'active', slot, now() + interval '1 hour' FROM tasks, generate_series(1, 2) AS slot WHERE id = ${spare!.id}`.execute(
          trx,
        );
        await sql`UPDATE tasks SET live_claims = 2 WHERE id = ${spare!.id}`.execute(trx);
      },
    ],
    [
      'submitted_claims_queued_by_latest_submission',
      'a claim marked submitted with no submission behind it (its slot counted)',
      async (trx) => {
        await sql`UPDATE claims SET status = 'submitted' WHERE id = ${releasedClaim.body.id}`.execute(trx);
        await sql`UPDATE tasks SET live_claims = live_claims + 1 WHERE id = ${released!.id}`.execute(trx);
      },
    ],
    [
      'distinct_members_per_task',
      'a member back on a task they already contributed to (its unique index dropped), slots counted',
      async (trx) => {
        await sql`DROP INDEX claims_one_per_member_and_task`.execute(trx);
        // Submitted work with its submission, so the review queue's order holds and only this rule breaks.
        await sql`
        WITH claim AS (
          INSERT INTO claims (circle_id, project_id, task_id, user_id, status, expires_at)
          SELECT circle_id, project_id, id, ${ann!.id}, 'submitted', now() + interval '1 hour' FROM tasks WHERE id = ${done!.id}
          RETURNING id, circle_id, user_id, updated_at
        )
        INSERT INTO submissions (circle_id, claim_id, user_id, revision, content, review_due_at, created_at)
        SELECT circle_id, id, user_id, 1, 'the same work again', now() + interval '1 day', updated_at FROM claim`.execute(
          trx,
        );
        await sql`UPDATE tasks SET live_claims = 1 WHERE id = ${done!.id}`.execute(trx);
      },
    ],
    [
      'active_claims_hold_member_slots',
      'an active claim holding no member slot, slots counted',
      async (trx) => {
        await sql`
        INSERT INTO claims (circle_id, project_id, task_id, user_id, status, expires_at)
        SELECT circle_id, project_id, id, ${ben!.id}, 'active', now() + interval '1 hour' FROM tasks WHERE id = ${spare!.id}`.execute(
          trx,
        );
        await sql`UPDATE tasks SET live_claims = 1 WHERE id = ${spare!.id}`.execute(trx);
      },
    ],
    [
      'active_claims_hold_member_slots',
      'a claim never sent back by a revise in an overflow slot, slots counted',
      async (trx) => {
        await sql`
        INSERT INTO claims (circle_id, project_id, task_id, user_id, status, member_slot, expires_at)
        SELECT circle_id, project_id, id, ${ben!.id}, 'active', -1, now() + interval '1 hour' FROM tasks WHERE id = ${spare!.id}`.execute(
          trx,
        );
        await sql`UPDATE tasks SET live_claims = 1 WHERE id = ${spare!.id}`.execute(trx);
      },
    ],
    [
      'one_contribution_per_accepted_claim',
      'a claim marked accepted without its contribution',
      async (trx) => {
        await sql`UPDATE claims SET status = 'accepted' WHERE id = ${releasedClaim.body.id}`.execute(trx);
      },
    ],
    [
      'one_checkin_per_member_day',
      'a second check-in of one member on one day (its constraint dropped), with its points and counts',
      async (trx) => {
        await sql`ALTER TABLE checkins DROP CONSTRAINT checkins_one_per_member_day`.execute(trx);
        await sql`
        WITH k AS (
          INSERT INTO checkins (challenge_id, circle_id, user_id, local_date, content, content_key, points)
          SELECT challenge_id, circle_id, user_id, local_date, 'again', 'another key', points FROM checkins WHERE id = ${checkin.body.id}
          RETURNING id, circle_id, user_id, points
        )
        INSERT INTO contributions (circle_id, user_id, source, checkin_id, points) SELECT circle_id, user_id, 'checkin', id, points FROM k`.execute(
          trx,
        );
        await sql`UPDATE challenge_participants SET checkins = checkins + 1`.execute(trx);
      },
    ],
    [
      'one_checkin_per_member_day',
      "a check-in moved after its challenge's last day, its member's summary kept in step",
      async (trx) => {
        await sql`UPDATE checkins SET local_date = local_date + 5 WHERE id = ${checkin.body.id}`.execute(trx);
        await sql`UPDATE challenge_participants SET last_date = last_date + 5`.execute(trx);
      },
    ],
    [
      'one_checkin_per_member_day',
      'a challenge cancelled the day before a check-in of it',
      async (trx) => {
        await sql`UPDATE challenges SET status = 'cancelled',
          cancelled_on = (SELECT local_date - 1 FROM checkins WHERE id = ${checkin.body.id})
          WHERE id = ${challenge.body.id}`.execute(trx);
      },
    ],
    [
      'checkin_points_match_checkins',
      'a check-in worth more than its contribution paid',
      async (trx) => {
        await sql`UPDATE checkins SET points = points + 1 WHERE id = ${checkin.body.id}`.execute(trx);
      },
    ],
    [
      'checkin_points_match_checkins',
      'a check-in contribution without its check-in row',
      async (trx) => {
        await sql`ALTER TABLE contributions DROP CONSTRAINT contributions_checkin_id_fkey`.execute(trx);
        await sql`INSERT INTO contributions (circle_id, user_id, source, checkin_id, points)
          VALUES (${circle.id}, ${ben!.id}, 'checkin', gen_random_uuid(), 7)`.execute(trx);
      },
    ],
    [
      'closed_challenges_summarised_once',
      'a challenge marked closed without its summary',
      async (trx) => {
        await sql`UPDATE challenges SET status = 'closed', closed_at = now() WHERE id = ${challenge.body.id}`.execute(
          trx,
        );
      },
    ],
    [
      'closed_challenges_summarised_once',
      'a second summary of a closed challenge (a closing run twice)',
      async (trx) => {
        await sql`UPDATE challenges SET status = 'closed', closed_at = now() WHERE id = ${challenge.body.id}`.execute(
          trx,
        );
        await sql`INSERT INTO events (circle_id, type, subject_id) SELECT circle_id, 'challenge.closed', id FROM challenges, generate_series(1, 2) WHERE id = ${challenge.body.id}`.execute(
          trx,
        );
      },
    ],
    [
      'challenge_participants_match_checkins',
      'a member summary counting a check-in that does not exist',
      async (trx) => {
        await sql`UPDATE challenge_participants SET checkins = checkins + 1`.execute(trx);
      },
    ],
    [
      'inbox_events_name_their_member',
      "ann's accepted work announced in ben's inbox",
      async (trx) => {
        await sql`UPDATE events SET recipient_id = ${ben!.id} WHERE type = 'review.created' AND recipient_id = ${ann!.id}`.execute(
          trx,
        );
      },
    ],
    [
      'payout_notices_match_payouts',
      "ann's payout notice lost",
      async (trx) => {
        await sql`DELETE FROM events WHERE type = 'payout.credited' AND recipient_id = ${ann!.id}`.execute(trx);
      },
    ],
    [
      'payout_notices_match_payouts',
      "ann's payout notice shown in the circle's feed",
      async (trx) => {
        await sql`UPDATE events SET recipient_only = false WHERE type = 'payout.credited' AND recipient_id = ${ann!.id}`.execute(
          trx,
        );
      },
    ],
    [
      'one_lease_reminder_per_lease',
      'the same lease announced twice (its unique index dropped)',
      async (trx) => {
        await sql`DROP INDEX events_one_lease_reminder`.execute(trx);
        await sql`
        INSERT INTO events (circle_id, type, subject_id, recipient_id, recipient_only, payload)
        SELECT circle_id, 'claim.lease_ending', id, user_id, true,
               jsonb_build_object('leaseStartedAt', '2030-01-01T00:00:00.000000Z', 'expiresAt', now() + interval '1 hour')
        FROM claims, generate_series(1, 2) WHERE id = ${releasedClaim.body.id}`.execute(trx);
      },
    ],
    [
      'circle_rollups_match_source',
      "a point added to cat's rolled-up day",
      async (trx) => {
        await sql`UPDATE circle_member_days SET points = points + 1 WHERE circle_id = ${folded.id}`.execute(trx);
      },
    ],
    [
      'circle_rollups_match_source',
      "cat's rolled-up day lost",
      async (trx) => {
        await sql`DELETE FROM circle_member_days WHERE circle_id = ${folded.id}`.execute(trx);
      },
    ],
    [
      'circle_rollups_match_source',
      'a rolled-up day of a circle never folded',
      async (trx) => {
        await sql`INSERT INTO circle_member_days (circle_id, user_id, local_date, points, activities)
          VALUES (${circle.id}, ${ann!.id}, current_date, 1, 1)`.execute(trx);
      },
    ],
    [
      'projects_settled_announced_once',
      'a settled project announced twice',
      async (trx) => {
        await sql`INSERT INTO events (circle_id, type, subject_id, actor_id, payload)
          SELECT circle_id, type, subject_id, actor_id, payload FROM events
          WHERE type = 'project.settled' AND subject_id = ${project.id}`.execute(trx);
      },
    ],
    [
      'projects_settled_announced_once',
      'an open project announced settled',
      async (trx) => {
        await sql`INSERT INTO events (circle_id, type, subject_id, payload)
          VALUES (${folded.id}, 'project.settled', ${foldedProject.id}, '{}')`.execute(trx);
      },
    ],
    [
      'circle_timezones_known',
      'a circle in a zone no tz database has',
      async (trx) => {
        await sql`UPDATE circles SET timezone = 'Mars/Olympus' WHERE id = ${circle.id}`.execute(trx);
      },
    ],
    [
      'challenge_timezones_known',
      'a challenge in a zone no tz database has',
      async (trx) => {
        await sql`UPDATE challenges SET timezone = 'Mars/Olympus' WHERE id = ${challenge.body.id}`.execute(trx);
      },
    ],
  ];
  breaks.push(
    [
      'webhook_deliveries_match_their_endpoint',
      "a delivery attempt filed under another endpoint than its message's",
      async (trx) => {
        await sql`UPDATE webhook_attempts SET endpoint_id = ${stopped.id} WHERE endpoint_id = ${hook.id}`.execute(trx);
      },
    ],
    [
      'webhook_attempts_numbered_without_gaps',
      'a message whose attempts skip a number',
      async (trx) => {
        await sql`UPDATE webhook_attempts SET attempt = 3 WHERE message_id = ${message!.id}`.execute(trx);
      },
    ],
    [
      'disabled_webhooks_have_their_event',
      'an endpoint disabled without its event',
      async (trx) => {
        await sql`UPDATE webhook_endpoints SET enabled = false, disabled_at = now(), disabled_reason = 'failing' WHERE id = ${hook.id}`.execute(
          trx,
        );
      },
    ],
    [
      'webhook_events_carry_no_secret',
      "an event carrying an endpoint's secret",
      async (trx) => {
        await sql`UPDATE events SET payload = payload || jsonb_build_object('secret', (SELECT secret FROM webhook_endpoints WHERE id = ${hook.id}))
          WHERE type = 'webhook.created' AND subject_id = ${hook.id}`.execute(trx);
      },
    ],
    [
      'webhook_retired_secrets_well_formed',
      'an endpoint whose current secret is also listed as retired',
      async (trx) => {
        await sql`UPDATE webhook_endpoints SET retired_secrets = jsonb_build_array(jsonb_build_object('secret', secret, 'expiresAt', now() + interval '1 day'))
          WHERE id = ${hook.id}`.execute(trx);
      },
    ],
  );
  t.same([...new Set(breaks.map((b) => b[0]))].sort(), [...INVARIANT_NAMES].sort(), 'every invariant gets broken');
  for (const [name, how, breakIt] of breaks) {
    t.same(await violatedAfter(db, breakIt), [name], `${name} alone is violated by ${how}`);
  }
  t.same(
    await violatedAfter(db, async (trx) => {
      await sql`UPDATE payouts SET amount = amount + 1 WHERE settlement_id = ${settlementId} AND user_id = ${ann!.id}`.execute(
        trx,
      );
    }),
    ['settlement_sums', 'settlement_ledger_matches_payouts', 'payout_notices_match_payouts'],
    'a payout changed after the settlement no longer matches its sums, its ledger nor the notice its member got',
  );
  await assertInvariants(t, db);

  // The trigger the contributions_unchanged check stands behind.
  await t.rejects(
    sql`UPDATE contributions SET points = points + 1 WHERE id = ${Number(adjustment.body.id)}`.execute(db),
    /append-only/,
    'contributions refuse an update while the trigger is on',
  );
  const sample = await violatedAfter(db, async (trx) => {
    await sql`UPDATE ledger_accounts SET balance = balance + 7 WHERE kind = 'owner_funding'`.execute(trx);
  });
  t.same(sample, ['account_balances_match_entries']);
  const withSamples = await db.transaction().execute(async (trx) => {
    await sql`UPDATE ledger_accounts SET balance = balance + 7 WHERE kind = 'owner_funding'`.execute(trx);
    const results = await checkInvariants(trx);
    await sql`UPDATE ledger_accounts SET balance = balance - 7 WHERE kind = 'owner_funding'`.execute(trx);
    return results;
  });
  const broken = withSamples.find((r) => r.name === 'account_balances_match_entries')!;
  t.match(broken, { violations: 1, samples: [{ balance: -93, entries: -100 }] }, 'a violation comes with sample rows');
});

t.test(
  'npm run check:invariants: progress per invariant, exit 0 on a healthy database and 1 on a broken one',
  async (t) => {
    const { app, db, config } = await buildTestApp(t);
    const owner = await registerUser(app, 'owner');
    const circle = await createCircle(app, owner);
    const [ann] = await joinMembers(app, circle.id, 1);
    const project = await createProject(app, owner, circle.id, { rewardPool: { amount: 50, unit: 'credits' } });
    await adjust(app, owner, project.id, ann!.id, 4);
    t.equal(await settleProject(db, await requestSettlementId(app, owner, project.id)), 'completed');

    const healthy = await runCheckCommand(config.databaseUrl);
    t.equal(healthy.code, 0, `exit 0 on a healthy database; stderr: ${healthy.stderr}`);
    const database = new URL(config.databaseUrl).pathname.slice(1);
    t.match(healthy.stdout, `checking invariants on ${database}`);
    for (const [i, name] of INVARIANT_NAMES.entries())
      t.match(healthy.stdout, `[${i + 1}/${INVARIANT_NAMES.length}] ${name}: ok`);
    t.match(healthy.stdout, `all ${INVARIANT_NAMES.length} invariants hold`);

    await sql`INSERT INTO ledger_entries (transaction_id, account_id, amount)
    SELECT t.id, a.id, 3 FROM ledger_transactions t, ledger_accounts a WHERE t.kind = 'pool_funding' AND a.kind = 'owner_funding'`.execute(
      db,
    );
    const broken = await runCheckCommand(config.databaseUrl);
    t.equal(broken.code, 1, 'exit 1 once an invariant is broken');
    t.match(broken.stdout, /\] ledger_transactions_balanced: VIOLATED \(1 rows\)/);
    t.match(broken.stdout, /\] account_balances_match_entries: VIOLATED \(1 rows\)/);
    t.match(broken.stdout, /"total":"?3"?/, 'with a sample row');
    t.match(broken.stdout, `2 of ${INVARIANT_NAMES.length} invariants violated`);
  },
);
