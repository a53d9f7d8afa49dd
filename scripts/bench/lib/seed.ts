import type pg from 'pg';
import { api } from './service.js';
import { fmt, progress } from './report.js';

// Seeding: owners, circles and projects through the API (the real path); the bulk (members,
// tasks, contributions) set-based in SQL with generate_series.

export const SKILLS = ['writing', 'translation', 'design', 'review', 'research', 'coding', 'testing', 'outreach'];

export interface Owner {
  id: string;
  token: string;
}

export async function registerOwner(url: string, handle: string): Promise<Owner> {
  const s = await api<{ user: { id: string }; accessToken: string }>(url, 'POST', '/v1/auth/register', null, {
    handle,
    password: 'bench-password-1',
  });
  return { id: s.user.id, token: s.accessToken };
}

export async function createCircle(url: string, owner: Owner, name: string): Promise<string> {
  return (await api<{ id: string }>(url, 'POST', '/v1/circles', owner.token, { name, joinPolicy: 'open' })).id;
}

export async function createProject(
  url: string,
  owner: Owner,
  circleId: string,
  title: string,
  rewardAmount = 0,
): Promise<string> {
  const body = { title, status: 'open', leaseSeconds: 86400, rewardPool: { amount: rewardAmount, unit: 'cents' } };
  return (await api<{ id: string }>(url, 'POST', `/v1/circles/${circleId}/projects`, owner.token, body)).id;
}

/** `count` members of the circle, created in SQL in chunks (with progress). Returns their ids. */
export async function seedMembers(
  pool: pg.Pool,
  circleId: string,
  handlePrefix: string,
  count: number,
): Promise<string[]> {
  const ids: string[] = [];
  const chunk = 50_000;
  for (let start = 0; start < count; start += chunk) {
    const n = Math.min(chunk, count - start);
    const { rows } = await pool.query<{ id: string }>(
      `
      WITH u AS (
        INSERT INTO users (handle, password_hash, display_name)
        SELECT $2 || g, 'not-a-password-hash', 'Bench member ' || g FROM generate_series($3::int, $3::int + $4::int - 1) g
        RETURNING id
      ), m AS (
        INSERT INTO memberships (circle_id, user_id, role) SELECT $1::uuid, id, 'member' FROM u
      )
      SELECT id FROM u`,
      [circleId, handlePrefix, start, n],
    );
    ids.push(...rows.map((r) => r.id));
    progress(`members: ${fmt(ids.length)}/${fmt(count)}`);
  }
  progress(`members: ${fmt(count)} seeded`, true);
  return ids;
}

/**
 * `count` open, unblocked leaf tasks: priorities 0-2, one skill each out of eight, one task in
 * five with 3 slots. Inserted in seq order, in chunks, then analyzed.
 */
export async function seedTasks(pool: pg.Pool, circleId: string, projectId: string, count: number): Promise<void> {
  const chunk = 50_000;
  for (let start = 1; start <= count; start += chunk) {
    const end = Math.min(count, start + chunk - 1);
    await pool.query(
      `
      INSERT INTO tasks (id, circle_id, project_id, title, description, weight, skills, slots, required_accepts, priority)
      SELECT gen_random_uuid(), $1::uuid, $2::uuid, 'Task ' || g, 'Bench task number ' || g || ': what to do and what counts as done.',
             1 + g % 10, ARRAY[($5::text[])[1 + g % 8]], CASE WHEN g % 5 = 0 THEN 3 ELSE 1 END, 1, g % 3
      FROM generate_series($3::int, $4::int) g ORDER BY g`,
      [circleId, projectId, start, end, SKILLS],
    );
    progress(`tasks: ${fmt(end)}/${fmt(count)}`);
  }
  progress(`tasks: ${fmt(count)} seeded`, true);
  await pool.query('ANALYZE tasks');
}
