import autocannon from 'autocannon';
import { fmt, progress } from './report.js';

// HTTP load through autocannon's programmatic API, with a progress line every second.

export interface LoadResult {
  /** Successful (2xx) responses per second. */
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  /** Non-2xx responses by status, and socket errors/timeouts: a sound run has none. */
  failures: Record<string, number>;
  seconds: number;
}

export interface HttpLoad {
  url: string;
  connections: number;
  seconds: number;
  label: string;
  /** Called for every request: the method, path, headers and body to send. */
  next: () => { method: 'GET' | 'POST'; path: string; token: string; body?: string };
}

export async function httpLoad(load: HttpLoad): Promise<LoadResult> {
  const instance = autocannon({
    url: load.url,
    connections: load.connections,
    pipelining: 1,
    duration: load.seconds,
    timeout: 30,
    requests: [
      {
        setupRequest: (request) => {
          const r = load.next();
          const headers: Record<string, string> = { authorization: `Bearer ${r.token}` };
          if (r.body !== undefined) headers['content-type'] = 'application/json';
          return { ...request, method: r.method, path: r.path, headers, body: r.body ?? '' };
        },
      },
    ],
  });
  let seconds = 0;
  instance.on('tick', ({ counter }: { counter: number }) => {
    seconds++;
    progress(`${load.label}: ${seconds}/${load.seconds} s, ${fmt(counter)} req/s`);
  });
  const result = await instance;
  progress(`${load.label}: done`, true);
  const failures: Record<string, number> = {};
  for (const [status, { count }] of Object.entries(result.statusCodeStats))
    if (!status.startsWith('2')) failures[status] = count;
  if (result.errors) failures.errors = result.errors;
  if (result.timeouts) failures.timeouts = result.timeouts;
  return {
    rps: result['2xx'] / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ok: result['2xx'],
    failures,
    seconds: result.duration,
  };
}
