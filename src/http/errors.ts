import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface FieldError {
  path: string;
  message: string;
}

/**
 * A failure the client can act on, with a stable machine-readable `code`. Services throw these;
 * the one error handler below turns them into problem+json. Nothing else builds error replies.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly errors?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const badRequest = (code: string, detail: string, errors?: FieldError[]) =>
  new AppError(400, code, detail, errors);
export const unauthorized = (code: string, detail: string) => new AppError(401, code, detail);
export const forbidden = (detail = 'Your role in this circle does not allow this.') =>
  new AppError(403, 'forbidden', detail);
export const notFound = (what: string) =>
  new AppError(404, `${what}_not_found`, `No such ${what.replaceAll('_', ' ')}.`);
export const conflict = (code: string, detail: string) => new AppError(409, code, detail);
export const unprocessable = (code: string, detail: string) => new AppError(422, code, detail);
export const unavailable = (detail: string) =>
  new AppError(503, 'service_unavailable', detail, undefined, { 'retry-after': '5' });

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function sendProblem(reply: FastifyReply, err: AppError): FastifyReply {
  if (err.headers) reply.headers(err.headers);
  return reply
    .code(err.status)
    .type('application/problem+json')
    .send({
      type: `https://circle-actions.dev/problems/${err.code.replaceAll('_', '-')}`,
      title: TITLES[err.status] ?? 'Error',
      status: err.status,
      detail: err.message,
      code: err.code,
      ...(err.errors ? { errors: err.errors } : {}),
    });
}

// Fastify's own errors (parsing, size limits, content types) mapped to stable codes.
const FASTIFY_CODES: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'body_too_large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_content_length'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json'],
  FST_ERR_CTP_EMPTY_TYPE: [415, 'unsupported_media_type'],
  FST_ERR_CTP_INVALID_TYPE: [415, 'unsupported_media_type'],
  FST_ERR_BAD_URL: [400, 'invalid_url'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'uri_too_long'],
  FST_ERR_ASYNC_CONSTRAINT: [400, 'invalid_request'],
};

// Postgres and network failures that mean "the database is unreachable right now", not a bug.
const UNAVAILABLE_PG = new Set(['57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004', '53300']);
const UNAVAILABLE_NET = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND']);

function isUnavailable(err: { code?: unknown; message?: string }): boolean {
  const code = typeof err.code === 'string' ? err.code : '';
  if (UNAVAILABLE_PG.has(code) || UNAVAILABLE_NET.has(code)) return true;
  const msg = err.message ?? '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection is closed|Stream isn't writeable/.test(
    msg,
  );
}

function toAppError(err: FastifyError & { validation?: unknown[]; validationContext?: string }): AppError {
  if (err instanceof AppError) return err;
  if (err.validation) {
    const part = err.validationContext ?? 'body';
    const errors = (
      err.validation as { instancePath?: string; message?: string; params?: Record<string, unknown> }[]
    ).map((v) => {
      const missing = v.params?.missingProperty ? `/${String(v.params.missingProperty)}` : '';
      const extra = v.params?.additionalProperty ? `/${String(v.params.additionalProperty)}` : '';
      const message = extra ? 'is not an allowed field' : (v.message ?? 'is invalid');
      return { path: `${part}${v.instancePath ?? ''}${missing}${extra}`, message };
    });
    return badRequest('invalid_request', 'The request has invalid fields; see errors.', errors);
  }
  const mapped = err.code ? FASTIFY_CODES[err.code] : undefined;
  if (mapped) return new AppError(mapped[0], mapped[1], err.message);
  if (err.statusCode === 429)
    return new AppError(429, 'rate_limited', 'Too many requests; retry after the time in Retry-After.');
  if (isUnavailable(err)) return unavailable('A backing service is unreachable; try again shortly.');
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new AppError(err.statusCode, 'invalid_request', err.message);
  }
  return new AppError(500, 'internal_error', 'Something went wrong on our side; it has been logged.');
}

/**
 * For Fastify's `frameworkErrors` option: errors the router raises before any route or hook runs
 * (a malformed percent-encoding, a path segment over maxParamLength). Without it Fastify answers
 * them with its own plain JSON, breaking the problem+json contract.
 */
export function frameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendProblem(reply, toAppError(err));
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const appErr = toAppError(err);
    if (appErr.status >= 500) request.log.error({ err }, 'request failed');
    return sendProblem(reply, appErr);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      new AppError(404, 'route_not_found', `No route ${request.method} ${request.url.split('?')[0]}.`),
    ),
  );
}
