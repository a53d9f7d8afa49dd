import type { LookupAddress } from 'node:dns';
import { Resolver } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { WebhookAttemptOutcome } from '../infra/database-schema.js';
import { addressAllowed, classifyAddress } from './address-policy.js';

// One delivery attempt over HTTP, made safe against the receiver and against the URL:
// - The address is checked where the connection is made: the socket connects to the address our
//   own lookup resolved and checked (every address of the name must pass), so a name that
//   resolves to a public address for a check and a private one for the connection (DNS
//   rebinding) cannot slip through. A literal address is checked before connecting. The lookup
//   asks DNS itself, cancelled with the attempt (see resolveAddresses).
// - Redirects are not followed: a 3xx is a failed attempt (its target is not checked or trusted).
// - One deadline covers connecting, sending and reading the answer; at most RESPONSE_CAP bytes of
//   the answer are read, then the connection is dropped, so a slow or endless answer cannot hold
//   a worker. No connection is reused (agent: false): each attempt resolves and checks again.

export const RESPONSE_CAP = 64 * 1024;

export interface AttemptResult {
  outcome: WebhookAttemptOutcome;
  responseStatus: number | null;
  durationMs: number;
  error: string | null;
}

class RefusedAddress extends Error {}

// RFC 6761: localhost names are loopback; they are not asked of DNS.
const LOCALHOST = /(^|\.)localhost\.?$/i;

/**
 * Every address of `hostname`, asked of DNS through `resolver` (c-ares): unlike dns.lookup, whose
 * getaddrinfo call holds one of libuv's four threads until the system resolver gives up, a query
 * here can be cancelled, so a receiver whose name never resolves cannot hold up other endpoints'
 * attempts (or anything else on that thread pool). Names only in /etc/hosts are not seen.
 */
async function resolveAddresses(resolver: Resolver, hostname: string, family: number): Promise<LookupAddress[]> {
  const wanted = (f: 4 | 6) => family !== (f === 4 ? 6 : 4);
  if (LOCALHOST.test(hostname)) {
    const loopback: LookupAddress[] = [
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ];
    return loopback.filter((a) => wanted(a.family as 4 | 6));
  }
  const asked = await Promise.allSettled([
    wanted(4) ? resolver.resolve4(hostname) : Promise.resolve([]),
    wanted(6) ? resolver.resolve6(hostname) : Promise.resolve([]),
  ]);
  const addresses = asked.flatMap((answer, i) =>
    answer.status === 'fulfilled' ? answer.value.map((address) => ({ address, family: i === 0 ? 4 : 6 })) : [],
  );
  if (addresses.length > 0) return addresses;
  const failed = asked.find((answer) => answer.status === 'rejected');
  throw failed?.reason ?? Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' });
}

function checkedLookup(allowPrivate: boolean, resolver: Resolver) {
  return (
    hostname: string,
    options: { all?: boolean; family?: number | string },
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    const family = Number(options.family) || 0;
    resolveAddresses(resolver, hostname, family).then(
      (addresses) => {
        const refused = addresses.find((a) => !addressAllowed(a.address, allowPrivate));
        // The address itself is not named: the delivery log is read by circle admins, and an
        // internal address is not theirs to learn by pointing a webhook at a name.
        if (refused)
          return callback(
            new RefusedAddress(
              `${hostname} resolves to a ${classifyAddress(refused.address)} address, which webhooks may not reach`,
            ),
            '',
          );
        const [first] = addresses;
        if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '');
        if (options.all) return callback(null, addresses);
        callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, ''),
    );
  };
}

export interface PostOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  responseCap?: number;
  /** The DNS servers to ask, as for dns.setServers (default: the system's). */
  dnsServers?: string[];
}

/** POSTs `body` to `url` with `headers`; never throws: every ending is an AttemptResult. */
export function postWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  options: PostOptions,
): Promise<AttemptResult> {
  const started = performance.now();
  const cap = options.responseCap ?? RESPONSE_CAP;
  const done = (outcome: WebhookAttemptOutcome, responseStatus: number | null, error: string | null) => ({
    outcome,
    responseStatus,
    durationMs: Math.round(performance.now() - started),
    error,
  });
  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    // One resolver per attempt, so ending the attempt cancels its own queries and no one else's.
    const resolver = new Resolver({ timeout: Math.max(1, Math.min(options.timeoutMs, 5_000)), tries: 2 });
    const finish = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolver.cancel();
      resolve(result);
    };
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return finish(done('network_error', null, 'invalid URL'));
    }
    const host = target.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) && !addressAllowed(host, options.allowPrivate)) {
      return finish(done('refused', null, `${host} (${classifyAddress(host)}) is not an address webhooks may reach`));
    }
    if (options.dnsServers) resolver.setServers(options.dnsServers);
    const client = target.protocol === 'https:' ? https : http;
    const request = client.request(target, {
      method: 'POST',
      agent: false,
      lookup: checkedLookup(options.allowPrivate, resolver) as never,
      headers: {
        ...headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': 'circle-actions-webhooks/1',
      },
    });
    // What a status says, whether or not the body after it ever ends.
    const answered = (status: number) => {
      if (status >= 200 && status < 300) return done('succeeded', status, null);
      if (status >= 300 && status < 400) return done('http_error', status, 'redirects are not followed');
      return done('http_error', status, `answered ${status}`);
    };
    let status: number | null = null;
    timer = setTimeout(() => {
      // A status already received is the receiver's answer (a 2xx took the message), even if the
      // body after it is still coming: only no status at all is a timeout.
      finish(status === null ? done('timeout', null, `no answer within ${options.timeoutMs} ms`) : answered(status));
      request.destroy();
    }, options.timeoutMs);
    request.on('error', (err) => {
      if (err instanceof RefusedAddress) finish(done('refused', null, err.message));
      else finish(done('network_error', null, err.message || (err as NodeJS.ErrnoException).code || 'network error'));
    });
    request.on('response', (response) => {
      const code = response.statusCode ?? 0;
      status = code;
      let read = 0;
      response.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read >= cap) {
          // Enough: the status is what counts, and the rest may never end.
          finish(answered(code));
          response.destroy();
          request.destroy();
        }
      });
      response.on('end', () => finish(answered(code)));
      response.on('error', () => finish(done('network_error', code, 'the answer broke off')));
      response.on('close', () => {
        if (!settled && response.complete) finish(answered(code));
      });
    });
    request.end(body);
  });
}
