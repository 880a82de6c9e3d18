/**
 * The Descom provider against a fake Descom on loopback, through real undici sockets. No Redis.
 */
import { once } from 'node:events';
import { createServer } from 'node:net';
import { buildConnector, Pool } from 'undici';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { DescomConfig } from '../../src/providers/descom/env.js';
import { AccountError, AmbiguousError, PermanentError, TransientError } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/logger.js';
import type { Batch } from '../../src/message/types.js';
import { createDescomProvider } from '../../src/providers/descom/provider.js';
import type { SmsProvider } from '../../src/providers/types.js';
import { startFakeDescom, type FakeDescom, type FakeDescomOptions } from '../helpers/fake-descom.js';
import { startLatencyProxy } from '../helpers/latency-proxy.js';

const silent = createLogger('silent');

function makeBatch(overrides: Partial<Batch> = {}): Batch {
  return {
    id: 'batch-1',
    requestId: 'req-1',
    provider: 'descom',
    tag: 'tag-1',
    messages: [
      { text: 'Hola Ana, tu cita es mañana', to: ['+34600000001', '+34600000002'] },
      { text: 'Hola Luis', to: ['+34600000003'] },
    ],
    estimatedCredits: 3,
    ...overrides,
  };
}

interface Setup {
  descom: FakeDescom;
  provider: SmsProvider;
}

/** A fake Descom and a provider pointed at it, both closed when the test ends. */
async function setup(
  opts: {
    fake?: FakeDescomOptions;
    cfg?: Partial<DescomConfig>;
    timeoutMs?: number;
    logger?: Logger;
    pool?: (origin: string) => Pool;
  } = {},
): Promise<Setup> {
  const descom = await startFakeDescom(opts.fake);
  onTestFinished(() => descom.close());
  const dispatcher = opts.pool?.(new URL(descom.url).origin);
  // destroy, not close: a pool stalled by a regression must not hold the test's teardown.
  if (dispatcher) onTestFinished(() => dispatcher.destroy());
  const provider = createDescomProvider(
    { user: descom.user, pass: descom.pass, url: descom.url, ratePerSecond: 10, ...opts.cfg },
    { timeoutMs: opts.timeoutMs ?? 5_000, logger: opts.logger ?? silent, ...(dispatcher && { dispatcher }) },
  );
  onTestFinished(() => provider.close());
  return { descom, provider };
}

function signal(): AbortSignal {
  return new AbortController().signal;
}

/** A loopback URL where nothing listens. */
async function closedPortUrl(): Promise<string> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return `http://127.0.0.1:${address.port}/api`;
}

async function sendError(provider: SmsProvider, batch = makeBatch(), s = signal()): Promise<unknown> {
  return provider.send(batch, { signal: s }).then(
    () => {
      throw new Error('expected the send to fail');
    },
    (err: unknown) => err,
  );
}

describe('Descom provider: success', () => {
  it('posts the batch once with auth headers and returns the receipt from the answer', async () => {
    const { descom, provider } = await setup({ cfg: { sender: 'Info' } });

    const receipt = await provider.send(makeBatch(), { signal: signal() });

    expect(descom.requests).toHaveLength(1);
    const [req] = descom.requests;
    expect(req?.method).toBe('POST');
    expect(req?.path).toBe('/api/sms/send');
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.headers['dsms-user']).toBe('smsq-test');
    expect(req?.headers['dsms-pass']).toBe('smsq-secret');
    expect(req?.headers['dsms-app']).toBe('smsq');
    expect(req?.body).toEqual({
      messages: [
        { to: ['+34600000001', '+34600000002'], text: 'Hola Ana, tu cita es mañana', senderID: 'Info' },
        { to: ['+34600000003'], text: 'Hola Luis', senderID: 'Info' },
      ],
    });
    expect(receipt).toEqual({
      providerIds: ['1000'],
      accepted: ['+34600000001', '+34600000002', '+34600000003'],
      invalid: [],
      creditsCharged: 3,
    });
    expect(descom.recipientsDelivered()).toEqual(receipt.accepted);
  });

  it('says when the request is written: once, after its connection opened, before Descom read it', async () => {
    // Every connection takes 200 ms to open (a distant host, a starved process): the allowance
    // must count the call from when it left, not from when it was asked for.
    const connect = buildConnector({});
    const { descom, provider } = await setup({
      pool: (origin) =>
        new Pool(origin, {
          connect: (opts, callback) => void setTimeout(() => connect(opts, callback), 200),
        }),
    });
    const writtenAt: number[] = [];
    const started = Date.now();

    await provider.send(makeBatch(), { signal: signal(), onWritten: () => writtenAt.push(Date.now()) });

    expect(writtenAt).toHaveLength(1);
    expect(writtenAt[0]! - started).toBeGreaterThanOrEqual(190);
    expect(descom.requests[0]!.at).toBeGreaterThanOrEqual(writtenAt[0]!);
  });

  it("uses the batch's sender over the configured one, and omits senderID when neither is set", async () => {
    const { descom, provider } = await setup({ cfg: { sender: 'Info' } });
    await provider.send(makeBatch({ sender: 'Clinica' }), { signal: signal() });
    const plain = await setup();
    await plain.provider.send(makeBatch(), { signal: signal() });

    const withSender = descom.requests[0]?.body as { messages: { senderID?: string }[] };
    expect(withSender.messages.map((m) => m.senderID)).toEqual(['Clinica', 'Clinica']);
    const withoutSender = plain.descom.requests[0]?.body as { messages: object[] };
    expect(withoutSender.messages.every((m) => !('senderID' in m))).toBe(true);
  });

  it('records a 2xx with an unreadable body as sent, with estimated credits', async () => {
    const { descom, provider } = await setup();
    descom.script({ status: 200, body: '<html>oops</html>' });

    const receipt = await provider.send(makeBatch(), { signal: signal() });

    expect(receipt).toEqual({
      providerIds: [],
      accepted: ['+34600000001', '+34600000002', '+34600000003'],
      invalid: [],
      creditsCharged: 3,
      creditsEstimated: true,
    });
  });
});

describe('Descom provider: status answers', () => {
  it('turns a 401 for a wrong password into an AccountError (credentials)', async () => {
    const { provider } = await setup({ cfg: { pass: 'wrong' } });
    const err = await sendError(provider);
    expect(err).toBeInstanceOf(AccountError);
    expect((err as AccountError).code).toBe('SMSQ_DESCOM_UNAUTHORIZED');
  });
});

describe('Descom provider: network failures', () => {
  it('turns a socket dropped before the body was read into an AmbiguousError (the client cannot tell)', async () => {
    const { descom, provider } = await setup();
    descom.script('drop-on-connect');

    const err = await sendError(provider);

    expect(err).toBeInstanceOf(AmbiguousError);
    expect(descom.requests).toHaveLength(0);
  });

  it('drains error bodies: 20 large error answers on a one-connection pool do not stall it', async () => {
    const { descom, provider } = await setup({
      pool: (origin) => new Pool(origin, { connections: 1, headersTimeout: 2_000, bodyTimeout: 2_000 }),
    });
    // Bodies over the stream's 64 KiB high-water mark: unread, they would pin the only socket.
    descom.script(...Array.from({ length: 20 }, () => ({ status: 500, body: 'x'.repeat(100_000) })));

    for (let i = 0; i < 20; i++) expect(await sendError(provider)).toBeInstanceOf(AmbiguousError);
    const receipt = await provider.send(makeBatch(), { signal: signal() });

    expect(receipt.providerIds).toEqual(['1000']);
    expect(descom.requests).toHaveLength(21);
  }, 10_000);
});

describe('Descom provider: keep-alive', () => {
  it("opens a new connection rather than reuse a socket the server may be closing (idle gap just under the server's timeout, no Keep-Alive hint)", async () => {
    // A server that closes idle sockets after 2 s without announcing it, 100 ms away: a request
    // written in the last ~200 ms before that close (measured: 1.75–1.95 s of idleness on the
    // client) meets its FIN on the way and never arrives.
    const descom = await startFakeDescom({ idleSocketTimeoutMs: 2_000, keepAliveHint: false });
    onTestFinished(() => descom.close());
    const proxy = await startLatencyProxy({ target: new URL(descom.url), latencyMs: 100 });
    onTestFinished(() => proxy.close());
    const provider = createDescomProvider(
      { user: descom.user, pass: descom.pass, url: proxy.url(descom.url), ratePerSecond: 10 },
      { timeoutMs: 5_000, logger: silent },
    );
    onTestFinished(() => provider.close());

    await provider.send(makeBatch(), { signal: signal() });
    // The idle gap is the input of this test, not a wait for something to happen.
    await new Promise((r) => setTimeout(r, 1_850));
    const receipt = await provider.send(makeBatch(), { signal: signal() });

    expect(receipt.providerIds).toEqual(['1001']);
    expect(descom.connections()).toBe(2);
  });
});

describe('Descom provider: held answers', () => {
  it('holds the answer until the test releases it, then answers as scripted', async () => {
    const { descom, provider } = await setup();
    const held = descom.holdNext();
    let settled = false;
    const pending = provider.send(makeBatch(), { signal: signal() }).finally(() => (settled = true));
    await held.received;
    expect(descom.requests).toHaveLength(1);
    expect(settled).toBe(false);

    held.release();
    expect((await pending).providerIds).toEqual(['1000']);
    expect(descom.recipientsDelivered()).toHaveLength(3);
  });

  it('performs a held send at release even when the client gave up (Descom acted; the answer was lost)', async () => {
    const { descom, provider } = await setup({ timeoutMs: 300 });
    const held = descom.holdNext();
    const err = await sendError(provider);
    expect(err).toBeInstanceOf(AmbiguousError);

    held.release();
    await vi.waitFor(() => expect(descom.requests[0]?.status).toBe(200));
    expect(descom.recipientsDelivered()).toHaveLength(3);
  });

  it('plays the scripted reply after the hold, and keeps later actions in order', async () => {
    const { descom, provider } = await setup();
    const held = descom.holdNext({ status: 503 });
    descom.script({ status: 422 });
    const first = sendError(provider);
    await held.received;
    held.release();
    expect(await first).toBeInstanceOf(TransientError);
    expect(await sendError(provider)).toBeInstanceOf(PermanentError);
  });
});

describe('Descom provider: probe', () => {
  it('is true only when the balance covers the credits the waiting work needs', async () => {
    const { descom, provider } = await setup({ fake: { balance: 5 } });
    expect(await provider.probe({ signal: signal(), neededCredits: 10 })).toBe(false);
    expect(await provider.probe({ signal: signal(), neededCredits: 5 })).toBe(true);
    descom.setBalance(0.5);
    expect(await provider.probe({ signal: signal() })).toBe(false);
  });

  it('is false when the credentials are refused', async () => {
    const { provider } = await setup({ cfg: { pass: 'wrong' } });
    expect(await provider.probe({ signal: signal() })).toBe(false);
  });

  it('is false when Descom cannot be reached', async () => {
    const provider = createDescomProvider(
      { user: 'u', pass: 'p', url: await closedPortUrl(), ratePerSecond: 10 },
      { timeoutMs: 2_000, logger: silent },
    );
    onTestFinished(() => provider.close());
    expect(await provider.probe({ signal: signal() })).toBe(false);
  });
});

describe('Descom provider: logs', () => {
  it('never logs a recipient number, a message text or the password, on failure or success', async () => {
    const lines: string[] = [];
    const logger = createLogger('trace', { write: (line: string) => void lines.push(line) });
    const { descom, provider } = await setup({ logger, cfg: { pass: 'smsq-secret', sender: 'Info' } });
    descom.script({ status: 500 }, 'drop-before-response', { status: 200, body: 'not json' });
    const batch = makeBatch();

    await sendError(provider, batch);
    await sendError(provider, batch);
    await provider.send(batch, { signal: signal() });
    await provider.send(batch, { signal: signal() });
    await provider.probe({ signal: signal() });

    const output = lines.join('');
    expect(output).toContain('batch-1'); // something was logged, with the id to correlate
    const forbidden = [...batch.messages.flatMap((m) => [m.text, ...m.to]), 'smsq-secret', '600000001'];
    for (const secret of forbidden) expect(output).not.toContain(secret);
  });
});
