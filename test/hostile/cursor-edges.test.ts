import t from 'tap';
import { addDays } from '../../src/challenges/challenge-days.js';
import { checkIn, createChallenge, membersSinceLongAgo } from '../challenge-helpers.js';
import { call, createCircle, type TestUser } from '../helper.js';
import { bookLedgerEntries, ledgerAccounts } from '../settlement-helpers.js';
import { buildWorld, defaultParams, fillPath, routeTable, type World } from './world.js';

// Cursors are opaque to clients but client input all the same: base64url JSON that anyone can
// decode, edit and send back. For every list route that hands out a next cursor, a real cursor is
// taken apart and each of its positions replaced in turn by values at and past the edges of what
// the service stores (int32 and safe-integer limits, huge and empty strings, snapshots Postgres
// refuses, NUL, other JSON types). Whatever comes back may be a 200 or a 4xx, never a 5xx: a value
// reaching SQL that the database rejects is a 500 that a forged cursor should not be able to cause.

const huge = 'x'.repeat(300);

/** Values to put in place of one position of a cursor. */
const EXTREMES: unknown[] = [
  0,
  -1,
  1,
  0.5,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  -(2 ** 31) - 1,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  -(2 ** 53),
  1e308,
  -1e308,
  '',
  '0',
  '-1',
  '2147483648',
  huge,
  'x'.repeat(3000),
  '0:0:',
  '0:0:0',
  '1:1:',
  '2:1:',
  '1:5:5',
  '4294967296:4294967296:',
  '1:4294967296:',
  '9223372036854775807:9223372036854775807:',
  '18446744073709551615:18446744073709551615:',
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '0000-01-01',
  '2024-02-30',
  '9999-12-31',
  '99999-01-01',
  'a\u0000b',
  '\ud800',
  "'",
  'checkins',
  'all',
  null,
  true,
  [],
  {},
];

/** Whole-cursor forgeries, whatever the route's key. */
const FORGERIES = (key: unknown[]): string[] => [
  '',
  'not base64url!',
  Buffer.from('not json').toString('base64url'),
  Buffer.from('{}').toString('base64url'),
  Buffer.from('[]').toString('base64url'),
  Buffer.from(JSON.stringify([...key, 1])).toString('base64url'),
  Buffer.from(JSON.stringify(key.slice(0, -1))).toString('base64url'),
  Buffer.from(JSON.stringify(key.map(() => 2 ** 31))).toString('base64url'),
  Buffer.from(JSON.stringify(key.map(() => '0:0:'))).toString('base64url'),
];

const encode = (key: unknown[]) => Buffer.from(JSON.stringify(key)).toString('base64url');

/**
 * Gives every list of the world at least two items, so a page of one has a next cursor; returns
 * the path parameters to list them with.
 */
async function fillLists(world: World): Promise<Record<string, string>> {
  const { app, db, users } = world;
  const { owner, admin, member } = users;
  await createCircle(app, owner); // GET /circles: the owner's second circle
  for (const user of [member, admin]) {
    const claimed = await call(app, 'POST', `/v1/tasks/${world.taskId}/claims`, { token: user.token });
    if (claimed.status !== 201) throw new Error(`claim failed: ${claimed.status}`);
  }
  for (const [user, points] of [
    [member, 30],
    [admin, 20],
  ] as [TestUser, number][]) {
    const res = await call(app, 'POST', `/v1/projects/${world.projectId}/adjustments`, {
      token: owner.token,
      body: { userId: user.id, points, reason: 'Helped out' },
    });
    if (res.status !== 201) throw new Error(`adjustment failed: ${res.status}`);
  }
  await world.fresh.submittedClaim(); // the review queue's second
  const revoked = await call(app, 'POST', `/v1/claims/${await world.fresh.activeClaim()}/revoke`, {
    token: owner.token,
    body: { reason: 'Reassigned' },
  });
  if (revoked.status !== 200) throw new Error(`revoke failed: ${revoked.status}`); // the member's inbox
  await world.fresh.challenge();
  await world.fresh.delivery();
  await world.fresh.webhook();
  await bookLedgerEntries(db, {
    circleId: world.circleId,
    accounts: await ledgerAccounts(db, world.circleId, member.id),
    count: 3,
    description: 'payout',
  });
  // A challenge with two check-ins by the member (one a make-up) and one by the admin, members
  // since before it began.
  await membersSinceLongAgo(db, world.circleId);
  const today = new Date().toISOString().slice(0, 10);
  const challenge = await createChallenge(app, owner, world.circleId, {
    startsOn: addDays(today, -1),
    endsOn: addDays(today, 30),
    timezone: 'UTC',
    makeUpAllowance: 1,
  });
  for (const [user, body] of [
    [member, {}],
    [member, { date: addDays(today, -1) }],
    [admin, {}],
  ] as [TestUser, { date?: string }][]) {
    const res = await checkIn(app, user, challenge.id, body);
    if (res.status !== 201) throw new Error(`check-in failed: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return { ...defaultParams(world), challengeId: challenge.id };
}

/** Query strings a route's cursor differs by (each shape of cursor it hands out). */
const VARIANTS: Record<string, string[]> = {
  'GET /v1/projects/{projectId}/tasks': ['', 'claimable=true'],
  'GET /v1/challenges/{challengeId}/leaderboard': ['', 'sort=current', 'sort=best'],
  'GET /v1/circles/{circleId}/leaderboard': ['', 'window=all'],
};

t.test('every part of every list cursor, forged to an extreme, is answered without a 5xx', async (t) => {
  const world = await buildWorld(t);
  const params = await fillLists(world);
  const lists = (await routeTable(world.app)).filter((r) => r.method === 'GET' && 'cursor' in r.query);
  const actors = [world.users.owner, world.users.member, world.users.admin];

  let covered = 0;
  let requests = 0;
  for (const route of lists) {
    const base = fillPath(route.path, params);
    for (const variant of VARIANTS[route.key] ?? ['']) {
      const url = (cursor: string) =>
        `${base}?limit=1${variant ? `&${variant}` : ''}&cursor=${encodeURIComponent(cursor)}`;
      // A real cursor, from the first caller who sees a second item.
      let cursor: string | null = null;
      let token = '';
      for (const actor of actors) {
        const res = await call(world.app, 'GET', `${base}?limit=1${variant ? `&${variant}` : ''}`, {
          token: actor.token,
        });
        if (res.status === 200 && res.body.nextCursor) {
          cursor = res.body.nextCursor as string;
          token = actor.token;
          break;
        }
      }
      const name = `${route.key}${variant ? `?${variant}` : ''}`;
      if (!t.ok(cursor, `${name} hands out a next cursor`) || !cursor) continue;
      covered++;
      const real = await call(world.app, 'GET', url(cursor), { token });
      t.equal(real.status, 200, `${name}: the real cursor pages on`);

      const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
      const failures: string[] = [];
      const attempt = async (label: string, forged: string) => {
        requests++;
        const res = await call(world.app, 'GET', url(forged), { token });
        if (res.status >= 500) failures.push(`${label}: ${res.status} ${res.body?.detail ?? ''}`);
        else if (res.status !== 200 && res.status !== 400)
          failures.push(`${label}: ${res.status} (a forged cursor is a 200 or a 400)`);
      };
      for (let i = 0; i < key.length; i++) {
        for (const value of EXTREMES) {
          const forged = [...key];
          forged[i] = value;
          await attempt(`[${i}] = ${JSON.stringify(value).slice(0, 60)}`, encode(forged));
        }
      }
      for (const forged of FORGERIES(key)) await attempt(`cursor ${forged.slice(0, 40)}`, forged);
      t.same(failures, [], `${name} (key of ${key.length}): no forged cursor answered other than 200 or 400`);
    }
  }
  t.ok(covered >= 20, `${covered} cursors of ${lists.length} list routes forged, ${requests} requests`);
});
