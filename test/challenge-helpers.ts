import type { Test } from 'tap';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../src/infra/postgres.js';
import { controlClock } from './clock.js';
import { call, createCircle, registerUser, type TestUser } from './helper.js';
import { joinMembers } from './marketplace-helpers.js';

// Building blocks for the challenge tests: a clock the test sets to the instant it needs (the
// check-in day is computed from the server's clock), an open circle with every role, challenges
// and check-ins through the HTTP API.

/** Stops Date.now at `iso` for the rest of the test; `set` and `advance` move it. */
export function clockAt(t: Test, iso: string) {
  const realNow = Date.now;
  const clock = controlClock(t);
  const set = (to: string) => clock.advance(Date.parse(to) - Date.now());
  set(iso);
  return {
    set,
    advance: (ms: number) => clock.advance(ms),
    /** Real time again (before starting workers, whose timers read Date.now). */
    restore: () => {
      Date.now = realNow;
    },
  };
}

/**
 * Makes every current member of the circle a member since 2000. The database stamps joined_at with
 * its own (real) clock, while challenge tests set the service's clock anywhere in time, and a
 * make-up may only fill a day since the member joined.
 */
export async function membersSinceLongAgo(db: Db, circleId: string): Promise<void> {
  await db
    .updateTable('memberships')
    .set({ joined_at: new Date('2000-01-01T00:00:00Z') })
    .where('circle_id', '=', circleId)
    .where('left_at', 'is', null)
    .execute();
}

/**
 * An open circle with an owner, an admin, `members` members and an outsider, all members since
 * 2000. Joining without an invite (whose expiry the database would judge on its own clock) keeps
 * this usable with the test's clock anywhere in time.
 */
export async function openCircle(app: FastifyInstance, members = 1) {
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner, 'open');
  const [admin, ...rest] = await joinMembers(app, circle.id, members + 1);
  const promoted = await call(app, 'PATCH', `/v1/circles/${circle.id}/members/${admin!.id}`, {
    token: owner.token,
    body: { role: 'admin' },
  });
  if (promoted.status !== 200) throw new Error(`role change failed: ${promoted.status}`);
  await membersSinceLongAgo(app.db, circle.id);
  const outsider = await registerUser(app, 'outsider');
  return { owner, circle, admin: admin!, member: rest[0]!, members: rest, outsider };
}

/** A fresh access token minted at the test clock's time (tokens live at most a day). */
export async function relogin(app: FastifyInstance, user: TestUser): Promise<TestUser> {
  const res = await call(app, 'POST', '/v1/auth/login', {
    body: { handle: user.handle, password: 'correct horse battery' },
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status}`);
  return { ...user, token: res.body.accessToken };
}

export async function createChallenge(
  app: FastifyInstance,
  owner: TestUser,
  circleId: string,
  body: Record<string, unknown>,
) {
  const res = await call(app, 'POST', `/v1/circles/${circleId}/challenges`, {
    token: owner.token,
    body: { title: 'Daily reading', pointsPerCheckin: 10, ...body },
  });
  if (res.status !== 201) throw new Error(`create challenge failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; today: string; endsAt: string; startsAt: string };
}

let contentCounter = 0;
/** A check-in; content defaults to a text no other check-in of the run uses. */
export const checkIn = (
  app: FastifyInstance,
  user: TestUser,
  challengeId: string,
  body: { content?: string; date?: string; links?: string[] } = {},
) =>
  call(app, 'POST', `/v1/challenges/${challengeId}/checkins`, {
    token: user.token,
    body: { content: `Passage number ${contentCounter++} of the reading`, ...body },
  });
