import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { Config } from '../../src/config.js';
import type { Db } from '../../src/infra/postgres.js';
import type { Queues } from '../../src/jobs/queues.js';
import { relayEvents } from '../../src/worker.js';
import { call, type TestUser } from '../helper.js';
import { waitFor } from '../marketplace-helpers.js';

// Real HTTP receivers for webhook tests (node:http on 127.0.0.1), and the steps that move events
// to them: the outbox relay run once, and waits on the delivery tables.

export interface Received {
  headers: Record<string, string>;
  body: string;
}

/** What a receiver does with a request: answer (status, body), or take over the response itself. */
export type Behaviour = (req: Received, res: ServerResponse, index: number) => void;

export const answer =
  (status: number, body = 'ok'): Behaviour =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(body);
  };

export async function startReceiver(t: Test, behaviour: Behaviour = answer(200)) {
  const received: Received[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let current = behaviour;
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(r);
      for (const w of waiters.filter((w) => received.length >= w.count)) w.resolve();
      current(r, res, received.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    behave(next: Behaviour) {
      current = next;
    },
    /**
     * Resolves once `count` requests have arrived in all; rejects after `timeoutMs`, so a delivery
     * that never comes fails its test with what did arrive instead of hanging the file.
     */
    requests(count: number, timeoutMs = 60_000): Promise<Received[]> {
      if (received.length >= count) return Promise.resolve(received);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`the receiver got ${received.length} of ${count} requests within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = {
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(received);
          },
        };
        waiters.push(waiter);
      });
    },
  };
}

const silent = pino({ level: 'silent' });

/** One pass of the outbox relay, as the worker's schedule runs it. */
export const relay = (db: Db, queues: Queues, config: Config) => relayEvents({ db, queues, config, log: silent });

export async function createWebhook(
  app: FastifyInstance,
  owner: TestUser,
  circleId: string,
  body: { url: string; events: string[]; description?: string },
) {
  const res = await call(app, 'POST', `/v1/circles/${circleId}/webhooks`, { token: owner.token, body });
  if (res.status !== 201) throw new Error(`create webhook failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; secret: string; enabled: boolean; events: string[] };
}

/** The attempts of a webhook's messages, oldest first. */
export const attemptsOf = (db: Db, webhookId: string) =>
  db.selectFrom('webhook_attempts').selectAll().where('endpoint_id', '=', webhookId).orderBy('seq').execute();

export const messagesOf = (db: Db, webhookId: string) =>
  db.selectFrom('webhook_messages').selectAll().where('endpoint_id', '=', webhookId).orderBy('event_id').execute();

/** Waits until the webhook has at least `count` attempts recorded; returns them. */
export async function attemptsReach(db: Db, webhookId: string, count: number, timeoutMs = 20_000) {
  const rows = await waitFor(
    async () => {
      const rows = await attemptsOf(db, webhookId);
      return rows.length >= count ? rows : undefined;
    },
    timeoutMs,
    25,
  );
  if (!rows) throw new Error(`webhook ${webhookId}: fewer than ${count} attempts recorded in time`);
  return rows;
}

/** Waits until every message of the webhook has finished; returns them. */
export async function messagesSettle(db: Db, webhookId: string, count: number, timeoutMs = 20_000) {
  const rows = await waitFor(
    async () => {
      const rows = await messagesOf(db, webhookId);
      return rows.length >= count && rows.every((m) => m.status !== 'pending') ? rows : undefined;
    },
    timeoutMs,
    25,
  );
  if (!rows) throw new Error(`webhook ${webhookId}: ${count} messages not finished in time`);
  return rows;
}
