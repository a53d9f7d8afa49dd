import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

// The service's one logger configuration: the server's logger (shared by the API and the workers)
// and an app built without one both use it, so what is kept out of the logs does not depend on
// who built the app.

/**
 * Fields whose values never reach a log line, at any depth down to five levels: credentials in
 * headers and cookies, passwords in bodies, access and refresh tokens, and secrets (webhook
 * signing secrets are `secret`). The names are matched exactly, as written by the API.
 */
export const REDACTED_FIELDS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'password',
  'currentPassword',
  'newPassword',
  'token',
  'accessToken',
  'refreshToken',
  'secret',
  'signingSecret',
] as const;

export const REDACTION_CENSOR = '[redacted]';

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const field of REDACTED_FIELDS) {
    const key = /^[A-Za-z_$][\w$]*$/.test(field) ? field : `["${field}"]`;
    const under = (prefix: string) => (key.startsWith('[') ? `${prefix}${key}` : prefix ? `${prefix}.${key}` : key);
    for (const prefix of ['', '*', '*.*', '*.*.*', '*.*.*.*']) paths.push(under(prefix));
  }
  return paths;
}

interface LoggedRequest {
  method: string;
  url: string;
  ip?: string;
  headers?: Record<string, unknown>;
  socket?: { remotePort?: number };
}

/**
 * The request as its log lines show it: Fastify's fields plus the headers (user agent, forwarded
 * addresses, content type help when reading an incident), which is why redaction must cover them.
 */
function requestForLog(req: LoggedRequest) {
  return {
    method: req.method,
    url: req.url,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
    headers: req.headers,
  };
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: redactPaths(), censor: REDACTION_CENSOR },
    serializers: { req: requestForLog },
  };
}

/** A pino logger with the service's redaction, writing to stdout unless given a destination. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level));
}
