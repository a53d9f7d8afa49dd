import { startChild, stop } from './processes.js';
import type { Statement } from './statements.js';

// The parent side of the HTTP limit: starts bare-route.child.ts and hands back its URL.

export interface BareRouteSpec {
  databaseUrl: string;
  /** The service's pool size, so both sides can hold as many statements in flight. */
  poolSize: number;
  steps: Statement[];
  rotations: Record<string, string[]>;
}

export interface BareRoute {
  /** The server's base URL; the route is `path` (GET or POST, any body, headers ignored). */
  url: string;
  path: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startBareRoute(spec: BareRouteSpec): Promise<BareRoute> {
  const child = startChild('scripts/bench/bare-route.child.ts', spec);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { type: string; port?: number; message?: string }) =>
        m.type === 'listening' ? resolve(m.port!) : reject(new Error(`bare route: ${m.message}`)),
      );
      child.once('exit', (code) => reject(new Error(`bare route exited before listening (exit ${code})`)));
    });
    return { url: `http://127.0.0.1:${port}`, path: '/bare', pid: child.pid!, stop: () => stop(child) };
  } catch (err) {
    await stop(child);
    throw err;
  }
}
