import type { ErrorCode, ErrorCodeOf, ErrorKind, NotFoundSubject } from './error-codes.js';

export type { ErrorCode, ErrorKind } from './error-codes.js';

export interface FieldError {
  path: string;
  message: string;
}

/**
 * A failure the client can act on, with a stable machine-readable `code`. Services and rules throw
 * these; they carry no transport detail, so business code never depends on HTTP. Codes come from
 * the registry in error-codes.ts, and each constructor below takes only the codes of its kind.
 */
export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: ErrorCode,
    message: string,
    readonly errors?: FieldError[],
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const invalid = (code: ErrorCodeOf<'invalid'>, detail: string, errors?: FieldError[]) =>
  new DomainError('invalid', code, detail, errors);
export const unauthorized = (code: ErrorCodeOf<'unauthorized'>, detail: string) =>
  new DomainError('unauthorized', code, detail);
export const forbidden = (detail = 'Your role in this circle does not allow this.') =>
  new DomainError('forbidden', 'forbidden', detail);
export const notFound = (what: NotFoundSubject) =>
  new DomainError('not_found', `${what}_not_found`, `No such ${what.replaceAll('_', ' ')}.`);
export const conflict = (code: ErrorCodeOf<'conflict'>, detail: string) => new DomainError('conflict', code, detail);
export const unprocessable = (code: ErrorCodeOf<'unprocessable'>, detail: string) =>
  new DomainError('unprocessable', code, detail);
export const rateLimited = (detail: string) => new DomainError('rate_limited', 'rate_limited', detail);
export const unavailable = (detail: string, code: ErrorCodeOf<'unavailable'> = 'service_unavailable') =>
  new DomainError('unavailable', code, detail);
