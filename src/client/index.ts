import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema.js';

// The typed client of the Circle Actions API: openapi-fetch over the types generated from the
// service's OpenAPI document (schema.d.ts, `npm run client:generate`). It imports nothing of the
// service, so it can be published or copied on its own (.dependency-cruiser.cjs keeps it so).

export type { components, operations, paths } from './schema.js';

/** An error answer: application/problem+json with a stable `code` (see GET /problems/{code}). */
export type Problem = components['schemas']['Problem'];
export type ErrorCode = Problem['code'];

/** Thrown by `unwrap` for an error answer, carrying the problem as the service sent it. */
export class ProblemError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${status} ${problem.code}: ${problem.detail}`);
    this.name = 'ProblemError';
  }

  get code(): ErrorCode {
    return this.problem.code;
  }
}

export const isProblem = (body: unknown): body is Problem =>
  typeof body === 'object' &&
  body !== null &&
  typeof (body as Problem).code === 'string' &&
  typeof (body as Problem).status === 'number';

export interface CircleActionsClient extends Client<paths> {
  /** Sends `Authorization: Bearer <token>` from now on (undefined: no header). */
  setToken(token: string | undefined): void;
}

export interface ClientOptions {
  /** An access token for every request (change it later with setToken). */
  token?: string;
  /** A fetch implementation, called with a Request (default: the global fetch). */
  fetch?: (request: Request) => Promise<Response>;
}

/**
 * A client for the service at `baseUrl` (e.g. http://127.0.0.1:3000). Calls are typed by path and
 * method: `client.POST('/v1/circles', { body })` answers `{ data, error, response }`, `error` being
 * the typed problem; wrap a call in `unwrap` to get the data or a ProblemError.
 */
export function createCircleActionsClient(baseUrl: string, options: ClientOptions = {}): CircleActionsClient {
  let token = options.token;
  const client = createClient<paths>({ baseUrl, ...(options.fetch ? { fetch: options.fetch } : {}) });
  const auth: Middleware = {
    onRequest({ request }) {
      if (token && !request.headers.has('authorization')) request.headers.set('authorization', `Bearer ${token}`);
      return request;
    },
  };
  client.use(auth);
  return Object.assign(client, {
    setToken(next: string | undefined) {
      token = next;
    },
  });
}

interface Answer {
  data?: unknown;
  error?: unknown;
  response: Response;
}

/** The data of a successful answer; throws ProblemError for a problem answer, Error for anything else. */
export async function unwrap<A extends Answer>(pending: Promise<A>): Promise<NonNullable<A['data']>> {
  const { data, error, response } = await pending;
  if (response.ok) return data as NonNullable<A['data']>;
  if (isProblem(error)) throw new ProblemError(response.status, error);
  throw new Error(
    `${response.status} ${response.statusText}: ${typeof error === 'string' ? error : JSON.stringify(error)}`,
  );
}
