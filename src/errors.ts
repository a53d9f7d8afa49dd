export interface FieldError {
  path: string;
  message: string;
}

/**
 * What went wrong, in words any transport understands: the HTTP layer (src/http/errors.ts) alone
 * turns a kind into a status; a job or a script reads it as it is.
 */
export type ErrorKind =
  | 'invalid'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'unprocessable'
  | 'rate_limited'
  | 'unavailable';

/**
 * A failure the client can act on, with a stable machine-readable `code`. Services and rules throw
 * these; they carry no transport detail, so business code never depends on HTTP.
 */
export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    readonly errors?: FieldError[],
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const invalid = (code: string, detail: string, errors?: FieldError[]) =>
  new DomainError('invalid', code, detail, errors);
export const unauthorized = (code: string, detail: string) => new DomainError('unauthorized', code, detail);
export const forbidden = (detail = 'Your role in this circle does not allow this.') =>
  new DomainError('forbidden', 'forbidden', detail);
export const notFound = (what: string) =>
  new DomainError('not_found', `${what}_not_found`, `No such ${what.replaceAll('_', ' ')}.`);
export const conflict = (code: string, detail: string) => new DomainError('conflict', code, detail);
export const unprocessable = (code: string, detail: string) => new DomainError('unprocessable', code, detail);
export const rateLimited = (detail: string) => new DomainError('rate_limited', 'rate_limited', detail);
export const unavailable = (detail: string) => new DomainError('unavailable', 'service_unavailable', detail);
