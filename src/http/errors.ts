import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, type ErrorCode, type ErrorKind, type FieldError, invalid, unavailable } from '../errors.js';
import { isBackendUnavailable, isWriteConflict } from '../infra/pg-errors.js';
import { MAX_REPORTED_ERRORS } from './validation.js';

/** A problem+json answer: a status, a stable `code`, a detail, and the headers it needs. */
interface Problem {
  status: number;
  code: ErrorCode;
  detail: string;
  errors?: FieldError[];
  headers?: Record<string, string>;
}

/** The one place a domain error's kind becomes an HTTP status. */
export const STATUS_OF: Record<ErrorKind, number> = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  unprocessable: 422,
  rate_limited: 429,
  unavailable: 503,
};

// A 503 tells clients when to come back: a backing service is usually back within seconds, and a
// write that collided with another can go again at once.
const RETRY_AFTER_SECONDS: Partial<Record<ErrorCode, number>> = { service_unavailable: 5, write_conflict: 1 };

const fromDomain = (err: DomainError): Problem => ({
  status: STATUS_OF[err.kind],
  code: err.code,
  detail: err.message,
  errors: err.errors,
  headers: err.code in RETRY_AFTER_SECONDS ? { 'retry-after': String(RETRY_AFTER_SECONDS[err.code]) } : undefined,
});

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

/**
 * A problem's `type`: the page this service serves for its code (src/http/problem-pages.ts). A
 * relative reference, resolved against the request's own URL (RFC 9457 §3.1.1), so it names this
 * service under whatever address the client reached it by, without trusting the Host header.
 */
export const problemTypeUri = (code: ErrorCode): string => `/problems/${code}`;

function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  if (problem.headers) reply.headers(problem.headers);
  return reply
    .code(problem.status)
    .type('application/problem+json')
    .send({
      type: problemTypeUri(problem.code),
      title: TITLES[problem.status] ?? 'Error',
      status: problem.status,
      detail: problem.detail,
      code: problem.code,
      ...(problem.errors ? { errors: problem.errors } : {}),
    });
}

// Fastify's own errors (parsing, size limits, content types) mapped to stable codes.
const FASTIFY_CODES: Record<string, [number, ErrorCode]> = {
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

function toProblem(err: FastifyError & { validation?: unknown[]; validationContext?: string }): Problem {
  if (err instanceof DomainError) return fromDomain(err);
  if (err.validation) {
    const part = err.validationContext ?? 'body';
    const all = err.validation as { instancePath?: string; message?: string; params?: Record<string, unknown> }[];
    const errors = all.slice(0, MAX_REPORTED_ERRORS).map((v) => {
      const missing = v.params?.missingProperty ? `/${String(v.params.missingProperty)}` : '';
      const extra = v.params?.additionalProperty ? `/${String(v.params.additionalProperty)}` : '';
      const message = extra ? 'is not an allowed field' : (v.message ?? 'is invalid');
      return { path: `${part}${v.instancePath ?? ''}${missing}${extra}`, message };
    });
    const more = all.length - errors.length;
    return fromDomain(
      invalid(
        'invalid_request',
        more > 0
          ? `The request has invalid fields; see errors (the first ${errors.length}; ${more} more not listed).`
          : 'The request has invalid fields; see errors.',
        errors,
      ),
    );
  }
  const mapped = err.code ? FASTIFY_CODES[err.code] : undefined;
  if (mapped) return { status: mapped[0], code: mapped[1], detail: err.message };
  if (err.statusCode === 429)
    return { status: 429, code: 'rate_limited', detail: 'Too many requests; retry after the time in Retry-After.' };
  if (isBackendUnavailable(err)) return fromDomain(unavailable('A backing service is unreachable; try again shortly.'));
  if (isWriteConflict(err))
    return fromDomain(
      unavailable(
        'The request collided with another one changing the same records; nothing was changed.',
        'write_conflict',
      ),
    );
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return { status: err.statusCode, code: 'invalid_request', detail: err.message };
  }
  return { status: 500, code: 'internal_error', detail: 'Something went wrong on our side; it has been logged.' };
}

/**
 * For Fastify's `frameworkErrors` option: errors the router raises before any route or hook runs
 * (a malformed percent-encoding, a path segment over maxParamLength). Without it Fastify answers
 * them with its own plain JSON, breaking the problem+json contract.
 */
export function frameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendProblem(reply, toProblem(err));
}

/**
 * Answers an error as problem+json from a hook inside a plugin that installs its own error
 * handler (the operator dashboard's), where a thrown error would reach that handler instead.
 */
export function replyWithError(reply: FastifyReply, err: Error): FastifyReply {
  return sendProblem(reply, toProblem(err as FastifyError));
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const problem = toProblem(err);
    if (problem.status >= 500) request.log.error({ err }, 'request failed');
    // A download that failed before its first byte (a CSV export's first page) is a problem, not a file.
    reply.removeHeader('content-disposition');
    return sendProblem(reply, problem);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, {
      status: 404,
      code: 'route_not_found',
      detail: `No route ${request.method} ${request.url.split('?')[0]}.`,
    }),
  );
}
