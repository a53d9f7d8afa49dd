import type pg from 'pg';
import { Redis } from 'ioredis';
import { cpuMeter } from './processes.js';

// Finds the processes whose CPU a measurement should account for.

/** Postgres backends connected to the bench database right now (pools are warm by then). */
export async function backendPids(pool: pg.Pool): Promise<number[]> {
  const { rows } = await pool.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
  );
  return rows.map((r) => r.pid);
}

let redisPid: number | null | undefined;

export async function redisServerPid(url: string): Promise<number | null> {
  if (redisPid !== undefined) return redisPid;
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    await redis.connect();
    redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]) || null;
  } catch {
    redisPid = null;
  } finally {
    redis.disconnect();
  }
  return redisPid;
}

/** Starts measuring the given processes plus the bench database's backends and Redis (and this
 * process, where autocannon runs, when it generates the load). The stop function lists the
 * backends again, so connections opened during the measurement count too. */
export async function startCpuMeter(
  pool: pg.Pool,
  redisUrl: string,
  processes: Record<string, number[]>,
  loadInThisProcess = true,
) {
  const redis = await redisServerPid(redisUrl);
  const stop = cpuMeter(
    { ...processes, postgres: await backendPids(pool), ...(redis && { redis: [redis] }) },
    loadInThisProcess,
  );
  return async () => stop({ postgres: await backendPids(pool) });
}
