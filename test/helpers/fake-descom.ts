/**
 * A stand-in for the Descom SMS API: a real `node:http` server on 127.0.0.1 (port 0) that answers
 * `POST /api/sms/send` and `GET /api/balance` like Descom does, records every request it received,
 * and plays scripted faults so tests can prove "never twice, never lost" end to end.
 *
 * ```ts
 * const descom = await startFakeDescom();
 * descom.script({ status: 503 }, 'drop-before-response'); // the next two sends; then success again
 * // … point DescomConfig.url at descom.url, run the code under test …
 * expect(new Set(descom.recipientsDelivered()).size).toBe(descom.recipientsDelivered().length);
 * await descom.close();
 * ```
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { analyzeText } from '../../src/message/segments.js';

/**
 * What the fake does with one upcoming `POST /api/sms/send` (balance requests never consume one):
 * - `'ok'`: the default; a realistic 200 (debits the balance; 402 when it is too low).
 * - `{ status, body?, headers? }`: answer exactly that. `body` is sent as is when a string, as JSON
 *   otherwise; without `body`, a 2xx gets the realistic success body, other statuses `{ error }`.
 * - `'drop-before-response'`: read and record the request (as delivered: Descom acted, the answer
 *   was lost), then destroy the socket.
 * - `'drop-on-connect'`: destroy the socket before reading the body; not recorded (never processed).
 * - `'hang'`: record the request (as delivered) and never answer.
 * - `{ hold, then? }`: read and record the request, wait until `hold` settles, then play `then`
 *   (default `'ok'`). Descom acts at that moment even when the client has gone (aborted, timed
 *   out): a 2xx `then` debits the balance and counts as delivered. For race tests; see `holdNext`.
 */
export type FakeDescomAction = FakeDescomReply | FakeDescomHold;

/** The actions a held request can end with. */
export type FakeDescomReply =
  | 'ok'
  | 'drop-before-response'
  | 'drop-on-connect'
  | 'hang'
  | { status: number; body?: unknown; headers?: Record<string, string> };

export interface FakeDescomHold {
  hold: Promise<unknown>;
  then?: Exclude<FakeDescomReply, 'drop-on-connect'>;
}

/** A held send (see `holdNext`): `received` resolves once the fake has read it, `release` lets it answer. */
export interface FakeDescomHeld {
  received: Promise<void>;
  release(): void;
}

/** One request the fake read. `recipients` is the flat `to` list of a send, `[]` otherwise. */
export interface FakeDescomRequest {
  method: string;
  /** Path without the query, e.g. `/api/sms/send`. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body, or the raw text when it was not JSON, or undefined when empty. */
  body: unknown;
  recipients: string[];
  /** True when the fake treats the SMS as sent (a 2xx, a drop after reading, a hang). */
  delivered: boolean;
  /** The status answered, if any. */
  status?: number;
  /** When the fake read it (ms since the epoch). */
  at: number;
}

export interface FakeDescomOptions {
  /** Accepted `DSMS-User` (default `smsq-test`). */
  user?: string;
  /** Accepted `DSMS-Pass` (default `smsq-secret`). */
  pass?: string;
  /** Starting credit (default 1,000,000). */
  balance?: number;
  /** Delay before every answer, in ms (default 0). */
  latencyMs?: number;
  /**
   * Closes a keep-alive socket idle this long after its last answer, in ms, like a real server's
   * keep-alive timeout (default: Node's own, 5 s, announced with `Keep-Alive: timeout=5`).
   */
  idleSocketTimeoutMs?: number;
  /**
   * With `idleSocketTimeoutMs`: announce it in a `Keep-Alive: timeout=<s>` header (default true).
   * False is a server (or a load balancer in front of it) that closes idle sockets without saying.
   */
  keepAliveHint?: boolean;
  /**
   * Extra fields of `GET /api/shipment/{id}` (whose body is otherwise the send's 200 body, as
   * Descom documents it), from the shipment's recipients: e.g. a per-recipient list, to test what
   * smsq does when Descom lists one. Default: none.
   */
  shipmentDetails?: (recipients: string[]) => Record<string, unknown>;
}

export interface FakeDescom {
  /** Base URL to use as `DescomConfig.url`, e.g. `http://127.0.0.1:43117/api`. */
  url: string;
  user: string;
  pass: string;
  /** The environment that points smsq's Descom provider at this fake (DESCOM_USER, DESCOM_PASS, DESCOM_URL). */
  env: Record<string, string>;
  /** Every request read, in arrival order (balance requests included). */
  requests: FakeDescomRequest[];
  /** Every recipient of every recorded send, whatever the answer (a 503 retried appears twice). */
  recipientsReceived(): string[];
  /** Recipients of sends the fake treats as performed: assert these have no duplicates. */
  recipientsDelivered(): string[];
  /** Queues actions for the next sends, consumed in order; when empty, sends succeed. */
  script(...actions: FakeDescomAction[]): void;
  /**
   * Scripts the next send to be held after it was read until `release()`, then to play `then`
   * (default `'ok'`): the answer leaves exactly when the test says.
   */
  holdNext(then?: FakeDescomHold['then']): FakeDescomHeld;
  /** TCP connections the fake accepted so far (a reused keep-alive socket adds none). */
  connections(): number;
  setBalance(credits: number): void;
  /** Resolves once at least `count` requests have been recorded (for waiting on events, not sleeps). */
  waitForRequests(count: number): Promise<void>;
  /** Stops the server and destroys every socket, hanging ones included. */
  close(): Promise<void>;
}

const SEND_PATH = '/api/sms/send';
const BALANCE_PATH = '/api/balance';
const SHIPMENT_PATH = /^\/api\/shipment\/(\d+)$/;
const MAX_MESSAGES = 50;
const MAX_TO = 100;

interface SendMessage {
  to: string[];
  text: string;
}

function readMessages(body: unknown): SendMessage[] | undefined {
  if (typeof body !== 'object' || body === null || !('messages' in body) || !Array.isArray(body.messages))
    return undefined;
  const messages: SendMessage[] = [];
  for (const m of body.messages as unknown[]) {
    if (typeof m !== 'object' || m === null) return undefined;
    const { to, text } = m as { to?: unknown; text?: unknown };
    if (!Array.isArray(to) || !to.every((n) => typeof n === 'string') || typeof text !== 'string')
      return undefined;
    messages.push({ to: to.map(String), text });
  }
  return messages;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function answer(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

export async function startFakeDescom(opts: FakeDescomOptions = {}): Promise<FakeDescom> {
  const user = opts.user ?? 'smsq-test';
  const pass = opts.pass ?? 'smsq-secret';
  const latencyMs = opts.latencyMs ?? 0;
  let balance = opts.balance ?? 1_000_000;
  let nextId = 1000;
  const actions: FakeDescomAction[] = [];
  const requests: FakeDescomRequest[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const idleTimeoutMs = opts.idleSocketTimeoutMs;
  const keepAliveHeader: Record<string, string> =
    idleTimeoutMs !== undefined && (opts.keepAliveHint ?? true)
      ? { 'keep-alive': `timeout=${Math.floor(idleTimeoutMs / 1000)}` }
      : {};
  const idleTimers = new Map<Socket, NodeJS.Timeout>();
  const heldReceived = new WeakMap<FakeDescomHold, () => void>();

  /** Closes `socket` once it has been idle `idleTimeoutMs`, as a server's keep-alive timeout does. */
  function scheduleIdleClose(socket: Socket): void {
    if (idleTimeoutMs === undefined || socket.destroyed) return;
    clearTimeout(idleTimers.get(socket));
    const timer = setTimeout(() => {
      idleTimers.delete(socket);
      socket.destroy();
    }, idleTimeoutMs);
    timer.unref();
    idleTimers.set(socket, timer);
    socket.once('close', () => {
      clearTimeout(idleTimers.get(socket));
      idleTimers.delete(socket);
    });
  }

  function record(fields: Omit<FakeDescomRequest, 'at'>): FakeDescomRequest {
    const entry = { ...fields, at: Date.now() };
    requests.push(entry);
    for (const w of waiters.filter((x) => requests.length >= x.count)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
    return entry;
  }

  /** The realistic 200 body, or a 402 when the balance cannot cover the send. */
  function performSend(messages: SendMessage[]): { status: number; body: unknown } {
    const recipients = messages.reduce((n, m) => n + m.to.length, 0);
    const numSms = messages.reduce((n, m) => n + m.to.length * analyzeText(m.text).segments, 0);
    if (numSms > balance) return { status: 402, body: { error: 'Saldo insuficiente' } };
    const before = balance;
    balance -= numSms;
    const now = new Date().toISOString().replace('T', ' ').slice(0, 19);
    const id = nextId++;
    const body = {
      id,
      dryrun: false,
      num_messages: recipients,
      num_sms: numSms,
      cost_credits: numSms,
      credits_before: before,
      credits_after: balance,
      ip: '127.0.0.1',
      created_at: now,
      updated_at: now,
    };
    shipments.set(id, { body, recipients: messages.flatMap((m) => m.to) });
    return { status: 200, body };
  }

  type Reply = { status: number; body: unknown; headers?: Record<string, string> };

  function chooseReply(
    action: Exclude<FakeDescomReply, 'drop-before-response' | 'drop-on-connect' | 'hang'>,
    messages: SendMessage[] | undefined,
    authorized: boolean,
  ): Reply {
    if (!authorized) return { status: 401, body: { error: 'Autentificación requerida o denegada' } };
    const scripted = typeof action === 'object' ? action : undefined;
    const scripted2xx = scripted !== undefined && scripted.status >= 200 && scripted.status < 300;
    if (scripted && scripted.body !== undefined) return { ...scripted, body: scripted.body };
    if (scripted && !scripted2xx) return { ...scripted, body: { error: `scripted ${scripted.status}` } };
    if (!messages || messages.length > MAX_MESSAGES || messages.some((m) => m.to.length > MAX_TO))
      return { status: 422, body: { error: 'Los datos enviados no son validos' } };
    const performed = performSend(messages);
    // A scripted 2xx without a body keeps the realistic body under the scripted status and headers.
    return scripted && performed.status === 200
      ? { ...performed, ...scripted, body: performed.body }
      : performed;
  }

  async function handleSend(req: IncomingMessage, res: ServerResponse, authorized: boolean): Promise<void> {
    // Bad credentials are refused before any scripted fault, as Descom would, without using one.
    const scripted = authorized ? (actions.shift() ?? 'ok') : 'ok';
    if (scripted === 'drop-on-connect') {
      req.socket.destroy();
      return;
    }
    const body = await readBody(req);
    const messages = readMessages(body);
    const recipients = messages?.flatMap((m) => m.to) ?? [];
    const entry = record({
      method: 'POST',
      path: SEND_PATH,
      headers: req.headers,
      body,
      recipients,
      delivered: false,
    });
    let action: FakeDescomReply;
    if (typeof scripted === 'object' && 'hold' in scripted) {
      heldReceived.get(scripted)?.();
      await scripted.hold.catch(() => undefined);
      action = scripted.then ?? 'ok';
    } else {
      action = scripted;
    }

    if (action === 'drop-before-response' || action === 'hang') {
      entry.delivered = messages !== undefined;
      if (action !== 'hang') req.socket.destroy();
      return;
    }
    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));

    const reply = chooseReply(action, messages, authorized);
    entry.status = reply.status;
    entry.delivered = reply.status >= 200 && reply.status < 300 && messages !== undefined;
    answer(res, reply.status, reply.body, { ...keepAliveHeader, ...reply.headers });
  }

  const shipments = new Map<number, { body: Record<string, unknown>; recipients: string[] }>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const authorized = req.headers['dsms-user'] === user && req.headers['dsms-pass'] === pass;
    if (req.method === 'POST' && path === SEND_PATH) return handleSend(req, res, authorized);

    const body = await readBody(req);
    const entry = record({
      method: req.method ?? '',
      path,
      headers: req.headers,
      body,
      recipients: [],
      delivered: false,
    });
    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));
    if (req.method === 'GET' && path === BALANCE_PATH) {
      entry.status = authorized ? 200 : 401;
      answer(
        res,
        entry.status,
        authorized ? { balance } : { error: 'Autentificación requerida o denegada' },
        keepAliveHeader,
      );
    } else if (req.method === 'GET' && SHIPMENT_PATH.test(path)) {
      const shipment = shipments.get(Number(SHIPMENT_PATH.exec(path)?.[1]));
      // Descom: 403 "not allowed to access this element" for a shipment that is not the account's.
      entry.status = !authorized ? 401 : shipment ? 200 : 403;
      const reply = !authorized
        ? { error: 'Autentificación requerida o denegada' }
        : shipment
          ? { ...shipment.body, ...opts.shipmentDetails?.(shipment.recipients) }
          : { error: 'No tiene permiso para acceder a este elemento' };
      answer(res, entry.status, reply, keepAliveHeader);
    } else {
      entry.status = 404;
      answer(res, 404, { error: 'Not found' }, keepAliveHeader);
    }
  }

  const server = createServer((req, res) => {
    if (idleTimeoutMs !== undefined) {
      // A request on this socket: it is busy until its answer is written.
      clearTimeout(idleTimers.get(req.socket));
      res.on('finish', () => scheduleIdleClose(req.socket));
    }
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) answer(res, 500, { error: String(err) });
      else res.destroy();
    });
  });
  let connectionCount = 0;
  server.on('connection', () => void connectionCount++);
  if (idleTimeoutMs !== undefined) {
    // Our own idle timer replaces Node's, which always announces itself in a Keep-Alive header.
    server.keepAliveTimeout = 0;
  }
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/api`,
    user,
    pass,
    env: { DESCOM_USER: user, DESCOM_PASS: pass, DESCOM_URL: `http://127.0.0.1:${port}/api` },
    requests,
    recipientsReceived: () => requests.flatMap((r) => r.recipients),
    recipientsDelivered: () => requests.filter((r) => r.delivered).flatMap((r) => r.recipients),
    script: (...more) => void actions.push(...more),
    holdNext(then) {
      let release!: () => void;
      const action: FakeDescomHold = {
        hold: new Promise<void>((resolve) => (release = resolve)),
        ...(then !== undefined && { then }),
      };
      const received = new Promise<void>((resolve) => heldReceived.set(action, resolve));
      actions.push(action);
      return { received, release };
    },
    connections: () => connectionCount,
    setBalance: (credits) => void (balance = credits),
    waitForRequests: (count) =>
      requests.length >= count
        ? Promise.resolve()
        : new Promise((resolve) => waiters.push({ count, resolve })),
    close: async () => {
      if (!server.listening) return;
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}
