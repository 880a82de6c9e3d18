import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { waitFor } from './wait.js';

/** One webhook request as the receiver saw it, signature verified. */
export interface ReceivedWebhook {
  id: string;
  /** `webhook-timestamp`, seconds. */
  timestamp: number;
  type: string;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
  raw: string;
  /** Local time it arrived, ms. */
  receivedAt: number;
  /** What the receiver answered. */
  status: number;
  /** 1 for the first request with this `webhook-id`, 2 for its first retry, … */
  attempt: number;
}

/** Decides the answer to one request (default 200); may wait (a slow receiver). */
export type WebhookResponder = (hook: Omit<ReceivedWebhook, 'status'>) => number | Promise<number>;

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/hooks` */
  url: string;
  /** The `whsec_…` secret the sender must sign with. */
  secret: string;
  /** Every verified request, in arrival order (retries included). */
  requests: ReceivedWebhook[];
  /** Requests that failed verification (bad signature, missing headers): must stay empty. */
  rejected: string[];
  /** A `webhook-id` seen again with another body (an event rebuilt under the same id): must stay empty. */
  changedBodies: string[];
  /** The first 2xx-answered request per `webhook-id` (what a consumer that dedupes by id keeps). */
  delivered(): ReceivedWebhook[];
  respond(responder: WebhookResponder): void;
  /** Resolves once `check` holds over the requests; rejects after `timeoutMs`. */
  waitFor(check: (r: WebhookReceiver) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * A real HTTP server on loopback that checks every request the way a producer should: the
 * Standard Webhooks signature with `Webhook.verify`, and the same body for every retry of one id.
 */
export async function startWebhookReceiver(opts: { secret?: string } = {}): Promise<WebhookReceiver> {
  const secret = opts.secret ?? newWebhookSecret();
  const verifier = new Webhook(secret);
  const requests: ReceivedWebhook[] = [];
  const rejected: string[] = [];
  const changedBodies: string[] = [];
  const bodies = new Map<string, string>();
  let responder: WebhookResponder = () => 200;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const raw = await readBody(req);
    const headers = {
      'webhook-id': String(req.headers['webhook-id'] ?? ''),
      'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
      'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
    };
    let body: ReceivedWebhook['body'];
    try {
      body = verifier.verify(raw, headers) as ReceivedWebhook['body'];
    } catch (err) {
      rejected.push(`${headers['webhook-id']}: ${(err as Error).message}`);
      res.writeHead(400).end();
      return;
    }
    const id = headers['webhook-id'];
    const before = bodies.get(id);
    if (before !== undefined && before !== raw) changedBodies.push(id);
    bodies.set(id, raw);
    const hook = {
      id,
      timestamp: Number(headers['webhook-timestamp']),
      type: body.type,
      body,
      raw,
      receivedAt: Date.now(),
      attempt: requests.filter((r) => r.id === id).length + 1,
    };
    const status = await responder(hook);
    requests.push({ ...hook, status });
    if (!res.destroyed) res.writeHead(status).end();
  };
  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const receiver: WebhookReceiver = {
    url: `http://127.0.0.1:${port}/hooks`,
    secret,
    requests,
    rejected,
    changedBodies,
    delivered() {
      const seen = new Set<string>();
      return requests.filter((r) => {
        if (r.status < 200 || r.status >= 300 || seen.has(r.id)) return false;
        seen.add(r.id);
        return true;
      });
    },
    respond(next) {
      responder = next;
    },
    async waitFor(check, timeoutMs = 10_000) {
      await waitFor(() => check(receiver), { timeoutMs, intervalMs: 20 }).catch((err: Error) => {
        throw new Error(
          `webhook receiver: ${err.message}; got ${JSON.stringify(
            requests.map((r) => ({ id: r.id, type: r.type, status: r.status })),
          )}`,
          { cause: err },
        );
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}
