import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, globalAgent } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { generate } from 'selfsigned';

/** Routes of the fake, below the base path `/1.0`, as `METHOD /template`. */
export type FakeOvhRoute =
  | 'GET /auth/time'
  | 'GET /sms'
  | 'GET /sms/{sn}'
  | 'PUT /sms/{sn}'
  | 'POST /sms/{sn}/jobs'
  | 'GET /sms/{sn}/jobs'
  | 'GET /sms/{sn}/jobs/{id}'
  | 'GET /sms/{sn}/outgoing'
  | 'GET /sms/{sn}/outgoing/{id}';

/**
 * A scripted fault for one upcoming request to a route (consumed in order; default: normal answer).
 * - `{ status, body?, headers? }`: answer that status with `body` (JSON; a string is sent raw), default
 *   `{ message }`, and extra `headers` (e.g. `{ 'Retry-After': '3' }` with a 429); nothing handled;
 * - `'html-502'`: a 502 with an HTML page, as a load balancer sends;
 * - `'not-granted'`: OVH's 403 `NOT_GRANTED_CALL` (the consumer key lacks the access rule);
 * - `'empty-200'` / `'unreadable-200'` / `'accept-204'`: handle the request (a POST job is created),
 *   then answer 200 with no body, 200 with a body that is not JSON, or 204;
 * - `{ acceptLate: ms }`: answer nothing; the POST job is created `ms` after the request arrived
 *   (after the client gave up, when `ms` exceeds its deadline);
 * - `{ acceptThen: fn }`: handle the request (a POST job is created), await `fn()`, then answer normally;
 * - `'drop-after-accept'`: handle the request (a POST job is created and recorded), then destroy the socket;
 * - `'drop-before-accept'`: destroy the socket, nothing handled;
 * - `'hang'`: never answer, nothing handled (the socket is destroyed by `close()`);
 * - `'accept-then-hang'`: handle the request (a POST job is created and recorded), then never answer.
 */
export type FakeOvhAction =
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { acceptLate: number }
  | { acceptThen: () => Promise<void> }
  | 'html-502'
  | 'not-granted'
  | 'empty-200'
  | 'unreadable-200'
  | 'accept-204'
  | 'drop-after-accept'
  | 'drop-before-accept'
  | 'hang'
  | 'accept-then-hang';

export interface FakeOvhOptions {
  /** What `GET /sms` lists; the first is `serviceName`. Default one service. */
  serviceNames?: string[];
  /** `creditsLeft` of the account; accepted jobs consume it. Default 1000. */
  creditsLeft?: number;
  /** Numbers (E.164) returned in `invalidReceivers`. */
  invalidNumbers?: Iterable<string>;
  /** Credits per valid receiver. Default 1. */
  creditsPerSms?: number;
  /** The fake's clock minus the local clock, in seconds. Default 0. */
  timeOffsetS?: number;
  /** Timestamps further than this from the fake's clock get OVH's 400. Default 30 s. */
  maxSkewS?: number;
  /**
   * How long an accepted SMS stays pending (listed by `GET /jobs`, not yet by `GET /outgoing`), in
   * ms. Default 0: sent at once.
   */
  pendingMs?: number;
  /**
   * Delivery reports, per SMS at its creation: after `afterMs` (once sent) its final
   * `deliveryReceipt` (`dlr`: 1 delivered, 2 failed, 16 error) and `ptt`; `'never'`: it stays at
   * `deliveryReceipt` 4 (pending) with ptt 3 (accepted by the operator) for good. Before its final
   * state a sent SMS shows 4 / 3 as well. When a `callBack` is set (`PUT /sms/{sn}`), the fake calls
   * it with OVH's parameters at the final state. Default (no plan): delivered (1 / 4) as soon as sent.
   */
  reportPlan?: (receiver: string, id: number) => FakeOvhReportPlan;
  /**
   * How the callback spells the receipt: `dlr` (as RaspiSMS reads it) or `description` (OVH's guide);
   * both send `id`, `ptt`, `date` and `descriptionDlr`. Default `dlr`.
   */
  callbackSpelling?: 'dlr' | 'description';
}

/** The delivery report an SMS of the fake ends with (see `FakeOvhOptions.reportPlan`). */
export type FakeOvhReportPlan = { afterMs: number; dlr: 1 | 2 | 16; ptt: number } | 'never';

/** One request as the fake received it. */
export interface FakeOvhRequest {
  method: string;
  /** Path below `/1.0`, without the query. */
  path: string;
  query: URLSearchParams;
  route?: FakeOvhRoute;
  /** Parsed JSON body, when there was one. */
  body: unknown;
  rawBody: string;
  headers: IncomingHttpHeaders;
  /** True once the client closed the connection before the fake answered (it gave up). */
  closedUnanswered: boolean;
  /** When the fake read it (ms since the epoch). */
  at: number;
}

/**
 * One SMS of an accepted job, pending or sent: `GET /sms/{sn}/jobs/{id}` shows it until
 * `pendingUntil`, then `GET /sms/{sn}/outgoing/{id}`.
 */
export interface FakeOutgoingRecord {
  id: number;
  tag: string;
  receiver: string;
  credits: number;
  message: string;
  sender?: string;
  /** When it was created, by the fake's clock (ms since the epoch). */
  createdAt: number;
  /** Local time (ms) until which it is pending. */
  pendingUntil: number;
  /** Its delivery report (see `FakeOvhOptions.reportPlan`); undefined: delivered once sent. */
  report?: FakeOvhReportPlan;
}

export interface FakeOvh {
  host: '127.0.0.1';
  port: number;
  /** `https://127.0.0.1:PORT/1.0`, for `OVH_ENDPOINT`. */
  endpointUrl: string;
  certPem: string;
  appKey: string;
  appSecret: string;
  consumerKey: string;
  serviceName: string;
  /** The environment that points smsq's OVH provider at this fake (endpoint and the three keys). */
  env: Record<string, string>;
  requests: FakeOvhRequest[];
  /** Every SMS of every accepted job, pending or sent. */
  outgoing: FakeOutgoingRecord[];
  /** Every receiver of every accepted POST job, in order (duplicates kept). */
  recipientsReceived(): string[];
  script(route: FakeOvhRoute, ...actions: FakeOvhAction[]): void;
  setCreditsLeft(credits: number): void;
  /** Changes how long SMS accepted from now on stay pending, in ms (see `FakeOvhOptions.pendingMs`). */
  setPendingMs(ms: number): void;
  /** The account's `callBack`, as last set with `PUT /sms/{sn}` (undefined before). */
  callBack(): string | undefined;
  /** Callback calls made (URL with its query) and their HTTP status (0 when the call failed). */
  callbacks: { url: string; status: number }[];
  close(): Promise<void>;
}

const BASE_PATH = '/1.0';
const ROUTES: { route: FakeOvhRoute; method: string; pattern: RegExp }[] = [
  { route: 'GET /auth/time', method: 'GET', pattern: /^\/auth\/time$/ },
  { route: 'GET /sms', method: 'GET', pattern: /^\/sms$/ },
  { route: 'GET /sms/{sn}', method: 'GET', pattern: /^\/sms\/(?<sn>[^/]+)$/ },
  { route: 'PUT /sms/{sn}', method: 'PUT', pattern: /^\/sms\/(?<sn>[^/]+)$/ },
  { route: 'POST /sms/{sn}/jobs', method: 'POST', pattern: /^\/sms\/(?<sn>[^/]+)\/jobs$/ },
  { route: 'GET /sms/{sn}/jobs', method: 'GET', pattern: /^\/sms\/(?<sn>[^/]+)\/jobs$/ },
  { route: 'GET /sms/{sn}/jobs/{id}', method: 'GET', pattern: /^\/sms\/(?<sn>[^/]+)\/jobs\/(?<id>\d+)$/ },
  { route: 'GET /sms/{sn}/outgoing', method: 'GET', pattern: /^\/sms\/(?<sn>[^/]+)\/outgoing$/ },
  {
    route: 'GET /sms/{sn}/outgoing/{id}',
    method: 'GET',
    pattern: /^\/sms\/(?<sn>[^/]+)\/outgoing\/(?<id>\d+)$/,
  },
];

const trusted = new Set<string>();

/** Makes this process's `https.globalAgent` (the one the `ovh` client uses) trust `certPem`, besides the usual roots. */
export function trustCert(certPem: string): void {
  trusted.add(certPem);
  globalAgent.options.ca = [...rootCertificates, ...trusted];
}

/** Writes `certPem` to a fresh temp file, for a child process's `NODE_EXTRA_CA_CERTS`. */
export function writeCertFile(certPem: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'smsq-fake-ovh-')), 'cert.pem');
  writeFileSync(path, certPem);
  return path;
}

/** OVH's signature: "$1$" + sha1(AS+CK+METHOD+URL+BODY+TS joined by "+"), URL without the port. */
export function ovhSignature(parts: {
  appSecret: string;
  consumerKey: string;
  method: string;
  url: string;
  body: string;
  timestamp: string;
}): string {
  const { appSecret, consumerKey, method, url, body, timestamp } = parts;
  return (
    '$1$' +
    createHash('sha1').update([appSecret, consumerKey, method, url, body, timestamp].join('+')).digest('hex')
  );
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'X-Ovh-Queryid': 'FAKE.ext-1.0',
    ...headers,
  });
  res.end(text);
}

function normaliseReceiver(receiver: string): string {
  return receiver.startsWith('00') ? `+${receiver.slice(2)}` : receiver;
}

/** Starts the fake OVH API on 127.0.0.1, on a free port, with a certificate made now. */
export async function startFakeOvh(opts: FakeOvhOptions = {}): Promise<FakeOvh> {
  // A unique subject per fake: with several self-signed certs trusted at once, OpenSSL picks the
  // issuer by name, and identical names would make it verify against the wrong one.
  const pems = await generate(
    [{ name: 'commonName', value: `smsq-fake-ovh-${randomBytes(6).toString('hex')}` }],
    {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: false },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 7, ip: '127.0.0.1' },
            { type: 2, value: 'localhost' },
          ],
        },
      ],
    },
  );
  const serviceNames = opts.serviceNames ?? ['sms-fake12345-1'];
  const invalidNumbers = new Set(opts.invalidNumbers ?? []);
  const creditsPerSms = opts.creditsPerSms ?? 1;
  const maxSkewS = opts.maxSkewS ?? 30;
  let pendingMs = opts.pendingMs ?? 0;
  const isPending = (o: FakeOutgoingRecord): boolean => Date.now() < o.pendingUntil;
  const secrets = {
    appKey: `fakeAppKey${randomBytes(4).toString('hex')}`,
    appSecret: `fakeAppSecret${randomBytes(8).toString('hex')}`,
    consumerKey: `fakeConsumerKey${randomBytes(8).toString('hex')}`,
  };
  let creditsLeft = opts.creditsLeft ?? 1000;
  let nextId = 270_000_000;
  const requests: FakeOvhRequest[] = [];
  const outgoing: FakeOutgoingRecord[] = [];
  const received: string[] = [];
  const scripts = new Map<FakeOvhRoute, FakeOvhAction[]>();
  const sockets = new Set<Socket>();
  const serverTime = (): number => Math.round(Date.now() / 1000) + (opts.timeOffsetS ?? 0);
  const serverNowMs = (): number => Date.now() + (opts.timeOffsetS ?? 0) * 1_000;
  let callBack: string | undefined;
  const callbacks: { url: string; status: number }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  /** The SMS's delivery state now: `deliveryReceipt`, `ptt`, and when it became final. */
  const reportOf = (record: FakeOutgoingRecord, pending: boolean) => {
    if (pending) return { dlr: 0, ptt: 0 };
    const plan = record.report;
    if (plan === undefined) return { dlr: 1, ptt: 4, finalAt: record.pendingUntil };
    if (plan === 'never' || Date.now() < record.pendingUntil + plan.afterMs) return { dlr: 4, ptt: 3 };
    return { dlr: plan.dlr, ptt: plan.ptt, finalAt: record.pendingUntil + plan.afterMs };
  };
  /** OVH calls the account's callBack when an SMS reaches its final state. */
  const scheduleCallback = (record: FakeOutgoingRecord) => {
    const plan = record.report;
    if (plan === undefined || plan === 'never') return;
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        if (!callBack) return;
        const url = new URL(callBack);
        url.searchParams.set('id', String(record.id));
        url.searchParams.set(
          opts.callbackSpelling === 'description' ? 'description' : 'dlr',
          String(plan.dlr),
        );
        url.searchParams.set('ptt', String(plan.ptt));
        url.searchParams.set('descriptionDlr', plan.dlr === 1 ? 'Delivered' : 'Failed');
        url.searchParams.set('date', new Date().toISOString().slice(0, 19).replace('T', ' '));
        const entry = { url: url.toString(), status: 0 };
        callbacks.push(entry);
        fetch(url).then(
          async (res) => {
            entry.status = res.status;
            await res.arrayBuffer();
          },
          () => undefined,
        );
      },
      Math.max(0, record.pendingUntil + plan.afterMs - Date.now()),
    );
    timers.add(timer);
  };
  const recordBody = (record: FakeOutgoingRecord, pending: boolean) => {
    const report = reportOf(record, pending);
    const common = {
      id: record.id,
      receiver: record.receiver,
      message: record.message,
      credits: record.credits,
      sender: record.sender ?? '',
      ptt: report.ptt,
      messageLength: record.message.length,
      numberOfSms: 1,
      deliveryReceipt: report.dlr,
      differedDelivery: 0,
      // OVH writes local time with an offset and whole seconds.
      creationDatetime: new Date(Math.floor(record.createdAt / 1000) * 1000)
        .toISOString()
        .replace('.000Z', '+00:00'),
      sentAt: null,
      deliveredAt:
        report.finalAt !== undefined && report.dlr === 1 ? new Date(report.finalAt).toISOString() : null,
    };
    // An sms.Job has no tag; an sms.Outgoing has one.
    return pending ? common : { ...common, tag: record.tag };
  };

  /** OVH's authentication checks, in its order; returns true when it answered an error. */
  function refuseAuth(req: IncomingMessage, res: ServerResponse, rawBody: string): boolean {
    const h = req.headers;
    if (h['x-ovh-application'] !== secrets.appKey) {
      sendJson(res, 403, {
        errorCode: 'INVALID_KEY',
        httpCode: '403 Forbidden',
        message: 'This application key is invalid',
      });
      return true;
    }
    if (h['x-ovh-consumer'] !== secrets.consumerKey) {
      sendJson(res, 403, {
        errorCode: 'INVALID_CREDENTIAL',
        httpCode: '403 Forbidden',
        message: 'This credential is not valid',
      });
      return true;
    }
    const timestamp = String(h['x-ovh-timestamp'] ?? '');
    const hostWithoutPort = String(h.host ?? '').replace(/:\d+$/, '');
    const expected = ovhSignature({
      ...secrets,
      method: req.method ?? '',
      url: `https://${hostWithoutPort}${req.url ?? ''}`,
      body: rawBody,
      timestamp,
    });
    const skewed = !/^\d+$/.test(timestamp) || Math.abs(Number(timestamp) - serverTime()) > maxSkewS;
    if (skewed || h['x-ovh-signature'] !== expected) {
      sendJson(res, 400, {
        errorCode: 'INVALID_SIGNATURE',
        httpCode: '400 Bad Request',
        message: 'Invalid signature',
      });
      return true;
    }
    return false;
  }

  /** Creates the job of a valid POST; answers 400 as OVH would for a bad body or no credit. */
  function createJob(body: unknown): { status: number; body: unknown } {
    if (typeof body !== 'object' || body === null) return { status: 400, body: { message: 'Invalid body' } };
    const job = body as { message?: unknown; receivers?: unknown; tag?: unknown; sender?: unknown };
    if (typeof job.message !== 'string' || job.message === '') {
      return { status: 400, body: { message: '[message] Missing parameter' } };
    }
    if (!Array.isArray(job.receivers) || !job.receivers.every((r) => typeof r === 'string')) {
      return { status: 400, body: { message: '[receivers] Invalid type' } };
    }
    const receivers = job.receivers.map(normaliseReceiver);
    const valid = receivers.filter((r) => /^\+[1-9]\d{7,14}$/.test(r) && !invalidNumbers.has(r));
    const invalid = receivers.filter((r) => !valid.includes(r));
    const total = valid.length * creditsPerSms;
    // Undocumented by OVH (it has no "out of credit" error); a plain 400 is the likely answer.
    if (total > creditsLeft) return { status: 400, body: { message: 'Not enough credits' } };
    creditsLeft -= total;
    const tag = typeof job.tag === 'string' ? job.tag : `auto${nextId}`;
    const ids = valid.map((receiver) => {
      const id = nextId++;
      const sender = typeof job.sender === 'string' ? job.sender : undefined;
      const record: FakeOutgoingRecord = {
        id,
        tag,
        receiver,
        credits: creditsPerSms,
        message: job.message as string,
        sender,
        createdAt: serverNowMs(),
        pendingUntil: Date.now() + pendingMs,
        ...(opts.reportPlan ? { report: opts.reportPlan(receiver, id) } : {}),
      };
      outgoing.push(record);
      scheduleCallback(record);
      return id;
    });
    received.push(...receivers);
    return {
      status: 200,
      body: { ids, validReceivers: valid, invalidReceivers: invalid, totalCreditsRemoved: total, tag },
    };
  }

  function answer(route: FakeOvhRoute, params: Record<string, string | undefined>, request: FakeOvhRequest) {
    switch (route) {
      case 'GET /auth/time':
        return { status: 200, body: serverTime() };
      case 'GET /sms':
        return { status: 200, body: serviceNames };
      case 'GET /sms/{sn}':
        return {
          status: 200,
          body: {
            name: params.sn,
            description: '',
            status: 'enable',
            creditsLeft,
            channel: 'both',
            creditsHoldByQuota: 0,
          },
        };
      case 'PUT /sms/{sn}': {
        const body = request.body as { callBack?: unknown } | undefined;
        if (typeof body?.callBack === 'string') callBack = body.callBack;
        return { status: 200, body: null };
      }
      case 'POST /sms/{sn}/jobs':
        return createJob(request.body);
      case 'GET /sms/{sn}/outgoing': {
        const tag = request.query.get('tag');
        const receipt = request.query.get('deliveryReceipt');
        const ptt = request.query.get('ptt');
        const sent = outgoing.filter((o) => !isPending(o));
        return {
          status: 200,
          body: sent
            .filter((o) => tag === null || o.tag === tag)
            .filter((o) => receipt === null || String(reportOf(o, false).dlr) === receipt)
            .filter((o) => ptt === null || String(reportOf(o, false).ptt) === ptt)
            .map((o) => o.id),
        };
      }
      case 'GET /sms/{sn}/jobs':
        return { status: 200, body: outgoing.filter(isPending).map((o) => o.id) };
      case 'GET /sms/{sn}/outgoing/{id}':
      case 'GET /sms/{sn}/jobs/{id}': {
        const wantPending = route === 'GET /sms/{sn}/jobs/{id}';
        const record = outgoing.find((o) => String(o.id) === params.id && isPending(o) === wantPending);
        if (!record)
          return {
            status: 404,
            body: { message: `The requested object (id = ${params.id}) does not exist` },
          };
        return { status: 200, body: recordBody(record, wantPending) };
      }
    }
  }

  function handle(req: IncomingMessage, res: ServerResponse, rawBody: string): void {
    const url = new URL(req.url ?? '/', 'https://fake');
    const path = url.pathname.startsWith(BASE_PATH) ? url.pathname.slice(BASE_PATH.length) : url.pathname;
    let body: unknown;
    try {
      body = rawBody ? JSON.parse(rawBody) : undefined;
    } catch {
      body = undefined;
    }
    const match = ROUTES.map((r) => ({ ...r, m: r.pattern.exec(path) })).find(
      (r) => r.m && r.method === req.method,
    );
    const request: FakeOvhRequest = {
      method: req.method ?? '',
      path,
      query: url.searchParams,
      route: match?.route,
      body,
      rawBody,
      headers: req.headers,
      closedUnanswered: false,
      at: Date.now(),
    };
    res.on('close', () => {
      if (!res.writableFinished) request.closedUnanswered = true;
    });
    requests.push(request);
    if (!match || !match.m || !url.pathname.startsWith(BASE_PATH)) {
      sendJson(res, 404, { class: 'Client::NotFound', message: 'Got an invalid (or empty) URL' });
      return;
    }
    const params = match.m.groups ?? {};
    // `/auth` calls are unsigned (the client never signs them, nor does OVH expect it).
    if (match.route !== 'GET /auth/time' && refuseAuth(req, res, rawBody)) return;
    if (params.sn !== undefined && !serviceNames.includes(params.sn)) {
      sendJson(res, 404, { class: 'Client::NotFound', message: 'This service does not exist' });
      return;
    }
    const action = scripts.get(match.route)?.shift();
    if (action === 'hang') return;
    if (action === 'drop-before-accept') {
      req.socket.destroy();
      return;
    }
    if (action === 'html-502') {
      res.writeHead(502, { 'Content-Type': 'text/html' });
      res.end('<html><body><h1>502 Bad Gateway</h1>The server returned an invalid response.</body></html>');
      return;
    }
    if (action === 'not-granted') {
      sendJson(res, 403, {
        errorCode: 'NOT_GRANTED_CALL',
        httpCode: '403 Forbidden',
        message: 'This call has not been granted',
      });
      return;
    }
    if (typeof action === 'object' && 'status' in action) {
      const body = action.body ?? { message: STATUS_CODES[action.status] ?? 'Error' };
      sendJson(res, action.status, body, action.headers);
      return;
    }
    if (typeof action === 'object' && 'acceptLate' in action) {
      setTimeout(() => answer(match.route, params, request), action.acceptLate);
      return;
    }
    const result = answer(match.route, params, request);
    if (typeof action === 'object') {
      action.acceptThen().then(
        () => sendJson(res, result.status, result.body),
        () => req.socket.destroy(),
      );
      return;
    }
    switch (action) {
      case 'accept-then-hang':
        return;
      case 'drop-after-accept':
        req.socket.destroy();
        return;
      case 'empty-200':
        res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end();
        return;
      case 'unreadable-200':
        res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end('{"ids":[1,2');
        return;
      case 'accept-204':
        res.writeHead(204);
        res.end();
        return;
      default:
        sendJson(res, result.status, result.body);
    }
  }

  const server = createServer({ key: pems.private, cert: pems.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  server.on('secureConnection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    host: '127.0.0.1',
    port,
    endpointUrl: `https://127.0.0.1:${port}${BASE_PATH}`,
    certPem: pems.cert,
    ...secrets,
    env: {
      OVH_ENDPOINT: `https://127.0.0.1:${port}${BASE_PATH}`,
      OVH_APP_KEY: secrets.appKey,
      OVH_APP_SECRET: secrets.appSecret,
      OVH_CONSUMER_KEY: secrets.consumerKey,
    },
    serviceName: serviceNames[0] ?? '',
    requests,
    outgoing,
    recipientsReceived: () => [...received],
    script(route, ...actions) {
      scripts.set(route, [...(scripts.get(route) ?? []), ...actions]);
    },
    setCreditsLeft(credits) {
      creditsLeft = credits;
    },
    setPendingMs(ms) {
      pendingMs = ms;
    },
    callBack: () => callBack,
    callbacks,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
