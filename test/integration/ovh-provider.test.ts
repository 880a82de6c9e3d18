import { once } from 'node:events';
import { globalAgent } from 'node:https';
import { Writable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import type { OvhConfig } from '../../src/providers/ovh/env.js';
import {
  AccountError,
  AmbiguousError,
  PermanentError,
  RateLimitedError,
  TransientError,
} from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/logger.js';
import type { Batch } from '../../src/message/types.js';
import { createOvhClient } from '../../src/providers/ovh/client.js';
import { createOvhProvider } from '../../src/providers/ovh/provider.js';
import { NOTHING_COUNTED, type SmsProvider } from '../../src/providers/types.js';
import { startFakeOvh, trustCert, type FakeOvh, type FakeOvhOptions } from '../helpers/fake-ovh.js';
import { onTeardown } from '../helpers/teardown.js';

const silent = createLogger('silent');
const signal = () => new AbortController().signal;

function makeBatch(overrides: Partial<Batch> = {}): Batch {
  return {
    id: 'batch-1',
    requestId: 'req-1',
    provider: 'ovh',
    tag: 'smsq-b1',
    messages: [{ text: 'Hola, tu código es 1234', to: ['+34600000001', '+34600000002'] }],
    estimatedCredits: 2,
    ...overrides,
  };
}

function configFor(fake: FakeOvh, overrides: Partial<OvhConfig> = {}): OvhConfig {
  return {
    endpoint: fake.endpointUrl,
    appKey: fake.appKey,
    appSecret: fake.appSecret,
    consumerKey: fake.consumerKey,
    serviceName: fake.serviceName,
    batchSize: 500,
    ratePerSecond: 1,
    noStopClause: true,
    settleMs: 120_000,
    ...overrides,
  };
}

/** Waits until the global agent has dropped its idle keep-alive sockets to `port`. */
async function agentSocketsClosed(port: number): Promise<void> {
  const sockets = Object.entries(globalAgent.freeSockets)
    .filter(([name]) => name.startsWith(`127.0.0.1:${port}:`))
    .flatMap(([, list]) => list ?? []);
  await Promise.all(sockets.filter((s) => !s.destroyed).map((s) => once(s, 'close')));
}

describe('OVH provider against a fake OVH (real ovh client, signatures checked)', () => {
  let fake: FakeOvh;
  const start = async (opts?: FakeOvhOptions) => {
    await fake.close();
    fake = await startFakeOvh(opts);
    trustCert(fake.certPem);
    return fake;
  };
  const providerFor = (
    overrides: Partial<OvhConfig> = {},
    deps: { timeoutMs?: number; logger?: Logger } = {},
  ) =>
    createOvhProvider(configFor(fake, overrides), {
      timeoutMs: deps.timeoutMs ?? 5_000,
      logger: deps.logger ?? silent,
    });
  const posts = () => fake.requests.filter((r) => r.route === 'POST /sms/{sn}/jobs');
  const timeSyncs = () => fake.requests.filter((r) => r.route === 'GET /auth/time').length;
  /** Syncs time first, so a short deadline in a test measures the call, not the sync (a loaded CI machine). */
  const synced = async (provider: SmsProvider) => {
    const warm = makeBatch({ tag: 'warm-up' });
    await expect
      .poll(() =>
        provider.lookup!(warm, { signal: signal(), sendingSince: 0 }).then(
          () => true,
          () => false,
        ),
      )
      .toBe(true);
    return provider;
  };

  beforeEach(async () => {
    const started = await startFakeOvh();
    onTeardown('fake OVH', () => started.close());
    fake = started;
    trustCert(fake.certPem);
  });

  it('sends one job with the exact parameters and returns the receipt', async () => {
    const receipt = await providerFor().send(makeBatch(), { signal: signal() });

    expect(posts()).toHaveLength(1);
    expect(posts()[0]!.path).toBe(`/sms/${fake.serviceName}/jobs`);
    expect(posts()[0]!.body).toStrictEqual({
      message: 'Hola, tu código es 1234',
      receivers: ['+34600000001', '+34600000002'],
      tag: 'smsq-b1',
      noStopClause: true,
      priority: 'high',
      // OVH_VALIDITY_MINUTES unset in this config: OVH's own default, said explicitly.
      validityPeriod: 2880,
    });
    expect(receipt).toStrictEqual({
      providerIds: fake.outgoing.map((o) => String(o.id)),
      accepted: ['+34600000001', '+34600000002'],
      invalid: [],
      creditsCharged: 2,
    });
    expect(receipt.providerIds).toHaveLength(2);
  });

  it('sends the batch sender over the configured one, never senderForResponse, and noStopClause as configured', async () => {
    const provider = providerFor({ sender: 'MyBrand', noStopClause: false });
    await provider.send(makeBatch({ tag: 't1' }), { signal: signal() });
    await provider.send(makeBatch({ tag: 't2', sender: 'Other' }), { signal: signal() });

    expect(posts().map((p) => p.body)).toMatchObject([
      { sender: 'MyBrand', noStopClause: false },
      { sender: 'Other', noStopClause: false },
    ]);
    for (const post of posts()) expect(post.body).not.toHaveProperty('senderForResponse');
  });

  it('reports invalid receivers of an HTTP 200 without failing', async () => {
    await start({ invalidNumbers: ['+34600000002'] });
    const receipt = await providerFor().send(makeBatch(), { signal: signal() });
    expect(receipt).toMatchObject({
      accepted: ['+34600000001'],
      invalid: ['+34600000002'],
      creditsCharged: 1,
    });
    expect(receipt.providerIds).toHaveLength(1);
  });

  it('passes the signature check with non-ASCII text (accents, emoji)', async () => {
    const text = 'Café à 8h ✅ 😀 ñ';
    await providerFor().send(makeBatch({ messages: [{ text, to: ['+34600000001'] }] }), { signal: signal() });
    expect(posts()[0]!.body).toMatchObject({ message: text });
    // The client escapes non-ASCII as \uXXXX (emoji as surrogate pairs) and signs those bytes.
    expect(posts()[0]!.rawBody).toContain('Caf\\u00e9');
    expect(posts()[0]!.rawBody).toContain('\\ud83d\\ude00');
  });

  it('discovers the service name once with GET /sms when none is configured', async () => {
    await start({ serviceNames: ['sms-only-1'] });
    const provider = providerFor({ serviceName: undefined });
    await provider.send(makeBatch({ tag: 'a' }), { signal: signal() });
    await provider.send(makeBatch({ tag: 'b' }), { signal: signal() });
    expect(fake.requests.filter((r) => r.route === 'GET /sms')).toHaveLength(1);
    expect(posts().map((p) => p.path)).toStrictEqual(['/sms/sms-only-1/jobs', '/sms/sms-only-1/jobs']);
  });

  it('waits the default delay on 429, the client having dropped Retry-After', async () => {
    fake.script('POST /sms/{sn}/jobs', { status: 429 });
    await expect(providerFor().send(makeBatch(), { signal: signal() })).rejects.toMatchObject({
      retryAfterMs: 2_000,
    });
  });

  it('pauses (AccountError) when a wrong secret makes every signed call a 400', async () => {
    const sending = providerFor({ appSecret: 'not-the-secret' }).send(makeBatch(), { signal: signal() });
    await expect(sending).rejects.toThrow(AccountError);
    await expect(sending).rejects.toMatchObject({ code: 'SMSQ_OVH_CREDENTIALS' });
  });

  it('retries (TransientError) a refused connection once time is synced (errno ECONNREFUSED)', async () => {
    const provider = providerFor();
    await provider.send(makeBatch({ tag: 'first' }), { signal: signal() });
    const { port } = fake;
    await fake.close();
    await agentSocketsClosed(port); // else the agent reuses a dead keep-alive socket: ECONNRESET
    const sending = provider.send(makeBatch({ tag: 'second' }), { signal: signal() });
    await expect(sending).rejects.toThrow(TransientError);
    await expect(sending).rejects.toHaveProperty('cause.errno', 'ECONNREFUSED');
  });

  it('sends nothing when the signal is already aborted (TransientError)', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(providerFor().send(makeBatch(), { signal: controller.signal })).rejects.toThrow(
      TransientError,
    );
    expect(fake.requests).toHaveLength(0);
  });

  it("finds by tag a batch whose answer was lost (drop-after-accept), with the records' credits", async () => {
    await start({ creditsPerSms: 1.5 });
    const provider = providerFor();
    const batch = makeBatch();
    fake.script('POST /sms/{sn}/jobs', 'drop-after-accept');
    await expect(provider.send(batch, { signal: signal() })).rejects.toThrow(AmbiguousError);

    const found = await provider.lookup!(batch, { signal: signal(), sendingSince: 0 });
    expect(found).toStrictEqual({
      providerIds: fake.outgoing.map((o) => String(o.id)),
      accepted: ['+34600000001', '+34600000002'],
      invalid: [],
      creditsCharged: 3,
    });
    expect(fake.requests.filter((r) => r.route === 'GET /sms/{sn}/outgoing')[0]!.query.get('tag')).toBe(
      'smsq-b1',
    );
    // Reconciled, not resent: each recipient reached OVH once.
    expect(fake.recipientsReceived()).toStrictEqual(['+34600000001', '+34600000002']);
  });

  it('finds nothing after a connection dropped before OVH accepted', async () => {
    const provider = providerFor();
    fake.script('POST /sms/{sn}/jobs', 'drop-before-accept');
    await expect(provider.send(makeBatch(), { signal: signal() })).rejects.toThrow(AmbiguousError);
    expect(await provider.lookup!(makeBatch(), { signal: signal(), sendingSince: 0 })).toBeUndefined();
    expect(fake.recipientsReceived()).toHaveLength(0);
  });

  it('records the estimate for a batch found by tag with more than 50 SMS', async () => {
    const to = Array.from({ length: 51 }, (_, i) => `+346000${String(i).padStart(5, '0')}`);
    const batch = makeBatch({ messages: [{ text: 'Hola', to }], estimatedCredits: 51 });
    const provider = providerFor();
    await provider.send(batch, { signal: signal() });
    const found = await provider.lookup!(batch, { signal: signal(), sendingSince: 0 });
    expect(found).toMatchObject({ accepted: to, creditsCharged: 51, creditsEstimated: true });
    expect(found!.providerIds).toHaveLength(51);
    expect(fake.requests.filter((r) => r.route === 'GET /sms/{sn}/outgoing/{id}')).toHaveLength(0);
  });

  it('probes by creditsLeft, and answers false on errors', async () => {
    const provider = providerFor();
    expect(await provider.probe({ signal: signal() })).toBe(true);
    fake.setCreditsLeft(0);
    expect(await provider.probe({ signal: signal() })).toBe(false);
    fake.setCreditsLeft(10);
    fake.script('GET /sms/{sn}', { status: 500 });
    expect(await provider.probe({ signal: signal() })).toBe(false);
    expect(await provider.probe({ signal: signal() })).toBe(true);
  });

  it("does not mutate the caller's params (the ovh client deletes keys from the object it gets)", async () => {
    const client = createOvhClient(configFor(fake), { timeoutMs: 5_000, logger: silent });
    const params = { message: 'Hola', receivers: ['+34600000001'], tag: 'p1', sender: null };
    const copy = structuredClone(params);
    await client.request('POST', `/sms/${fake.serviceName}/jobs`, params);
    expect(params).toStrictEqual(copy);
    expect(posts()[0]!.body).toStrictEqual({ message: 'Hola', receivers: ['+34600000001'], tag: 'p1' });
  });

  it('rejects a call it cannot even prepare, before anything is sent', async () => {
    const client = createOvhClient(configFor(fake), { timeoutMs: 5_000, logger: silent });
    const calling = client.request('POST', `/sms/${fake.serviceName}/jobs`, { message: 'x', bad: () => 1 });
    await expect(calling).rejects.toMatchObject({ reason: 'unexpected', phase: 'before-send' });
    expect(posts()).toHaveLength(0);
  });

  it.each([
    [
      'two messages',
      {
        messages: [
          { text: 'a', to: ['+34600000001'] },
          { text: 'b', to: ['+34600000002'] },
        ],
      },
    ],
    ['no recipients', { messages: [{ text: 'a', to: [] }] }],
    ['a tag over 20 characters', { tag: 'x'.repeat(21) }],
  ])('refuses a batch with %s without calling OVH (PermanentError)', async (_name, overrides) => {
    await expect(providerFor().send(makeBatch(overrides), { signal: signal() })).rejects.toThrow(
      PermanentError,
    );
    expect(fake.requests).toHaveLength(0);
  });

  it('syncs time once across several sends and lookups (offset 0, which the client reads as unknown)', async () => {
    const provider = providerFor();
    for (const tag of ['s1', 's2', 's3']) await provider.send(makeBatch({ tag }), { signal: signal() });
    await provider.lookup!(makeBatch({ tag: 's1' }), { signal: signal(), sendingSince: 0 });
    expect(timeSyncs()).toBe(1);
  });

  it('signs with the server clock when it is an hour ahead', async () => {
    await start({ timeOffsetS: 3_600, maxSkewS: 5 });
    const provider = providerFor();
    await provider.send(makeBatch({ tag: 'x1' }), { signal: signal() });
    await provider.send(makeBatch({ tag: 'x2' }), { signal: signal() });
    expect(timeSyncs()).toBe(1);
    const stamp = Number(posts()[1]!.headers['x-ovh-timestamp']);
    expect(Math.abs(stamp - (Math.round(Date.now() / 1000) + 3_600))).toBeLessThanOrEqual(2);
  });

  it('does not pile listeners on reused keep-alive sockets (no idle timeout handed to the client)', async () => {
    const provider = providerFor();
    for (let i = 0; i < 15; i++) await provider.probe({ signal: signal() });
    const sockets = Object.entries(globalAgent.freeSockets)
      .filter(([name]) => name.startsWith(`127.0.0.1:${fake.port}:`))
      .flatMap(([, list]) => list ?? []);
    expect(sockets.length).toBeGreaterThan(0);
    for (const socket of sockets) expect(socket.listenerCount('timeout')).toBeLessThanOrEqual(2);
  });

  it('retries a failed time sync on the next call (TransientError, nothing sent)', async () => {
    fake.script('GET /auth/time', { status: 500 });
    const provider = providerFor();
    await expect(provider.send(makeBatch(), { signal: signal() })).rejects.toThrow(TransientError);
    expect(posts()).toHaveLength(0);
    await expect(provider.send(makeBatch(), { signal: signal() })).resolves.toMatchObject({
      creditsCharged: 2,
    });
    expect(timeSyncs()).toBe(2);
  });

  it('never logs numbers, texts or secrets', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger('trace', sink);
    const text = 'Secreto: tu código 987654';
    const batch = makeBatch({ messages: [{ text, to: ['+34611112222', '+34633334444'] }] });
    const provider = providerFor({ serviceName: undefined }, { logger, timeoutMs: 300 });
    const outcomes: unknown[] = [];
    const attempt = async (b: Batch) => {
      try {
        outcomes.push(await provider.send(b, { signal: signal() }));
      } catch (err) {
        outcomes.push(err);
        logger.error({ err }, 'send failed'); // as the batch worker will
      }
    };

    await attempt({ ...batch, tag: 'ok' });
    fake.script('POST /sms/{sn}/jobs', { status: 500 });
    await attempt({ ...batch, tag: 'e500' });
    fake.script('POST /sms/{sn}/jobs', 'hang');
    await attempt({ ...batch, tag: 'hang' });
    fake.script('POST /sms/{sn}/jobs', 'drop-after-accept');
    await attempt({ ...batch, tag: 'drop' });
    await provider.lookup!({ ...batch, tag: 'drop' }, { signal: signal(), sendingSince: 0 }).catch(
      (err: unknown) => logger.error({ err }, 'lookup failed'),
    );
    fake.setCreditsLeft(0);
    await attempt({ ...batch, tag: 'nocredit' });
    fake.script('GET /sms/{sn}', { status: 403 });
    await provider.probe({ signal: signal() });

    expect(outcomes).toHaveLength(5);
    const output = lines.join('');
    expect(lines.length).toBeGreaterThan(5);
    for (const forbidden of [
      '34611112222',
      '34633334444',
      '611112222',
      text,
      '987654',
      fake.appSecret,
      fake.consumerKey,
    ]) {
      expect(output).not.toContain(forbidden);
    }
  });

  describe('pending jobs, late acceptance and lookups since the sending time', () => {
    const lookups = () => fake.requests.filter((r) => r.route === 'GET /sms/{sn}/jobs');

    it('finds a batch whose SMS are still pending (in /jobs, not yet in /outgoing)', async () => {
      await start({ pendingMs: 60_000, creditsPerSms: 1.5 });
      const provider = providerFor();
      const batch = makeBatch();
      const sendingSince = Date.now();
      fake.script('POST /sms/{sn}/jobs', 'drop-after-accept');
      await expect(provider.send(batch, { signal: signal() })).rejects.toThrow(AmbiguousError);

      const found = await provider.lookup!(batch, { signal: signal(), sendingSince });
      expect(found).toStrictEqual({
        providerIds: fake.outgoing.map((o) => String(o.id)),
        accepted: ['+34600000001', '+34600000002'],
        invalid: [],
        creditsCharged: 3,
      });
      expect(lookups()).toHaveLength(1);
      expect(fake.requests.filter((r) => r.route === 'GET /sms/{sn}/jobs/{id}')).toHaveLength(2);
      expect(fake.recipientsReceived()).toStrictEqual(['+34600000001', '+34600000002']);
    });

    it.each([
      ['sent', 0],
      ['still pending', 60_000],
    ])('finds with a later lookup a batch OVH accepted after we gave up (%s)', async (_label, pendingMs) => {
      await start({ pendingMs });
      const provider = await synced(providerFor({}, { timeoutMs: 300 }));
      const batch = makeBatch();
      const sendingSince = Date.now();
      fake.script('POST /sms/{sn}/jobs', { acceptLate: 800 });
      await expect(provider.send(batch, { signal: signal() })).rejects.toThrow(AmbiguousError);
      expect(fake.recipientsReceived()).toHaveLength(0);

      await expect
        .poll(() => provider.lookup!(batch, { signal: signal(), sendingSince }), {
          timeout: 3_000,
          interval: 100,
        })
        .toMatchObject({ accepted: ['+34600000001', '+34600000002'], invalid: [] });
      expect(fake.recipientsReceived()).toStrictEqual(['+34600000001', '+34600000002']);
    });

    it('does not take a pending job created before the batch went sending, nor one with another text', async () => {
      await start({ pendingMs: 60_000 });
      const provider = providerFor();
      const batch = makeBatch();
      await provider.send(batch, { signal: signal() });

      const later = Date.now() + 10_000;
      expect(await provider.lookup!(batch, { signal: signal(), sendingSince: later })).toBeUndefined();
      const otherText = makeBatch({
        messages: [{ text: 'Otro texto', to: ['+34600000001', '+34600000002'] }],
      });
      expect(await provider.lookup!(otherText, { signal: signal(), sendingSince: 0 })).toBeUndefined();
      const otherReceivers = makeBatch({
        messages: [{ text: 'Hola, tu código es 1234', to: ['+34600000009'] }],
      });
      expect(await provider.lookup!(otherReceivers, { signal: signal(), sendingSince: 0 })).toBeUndefined();
      expect(
        await provider.lookup!(batch, { signal: signal(), sendingSince: Date.now() - 1_000 }),
      ).toMatchObject({
        accepted: ['+34600000001', '+34600000002'],
      });
    });

    it("reads a pending job's creation time on OVH's clock (an hour behind ours)", async () => {
      await start({ pendingMs: 60_000, timeOffsetS: -3_600, maxSkewS: 5 });
      const provider = providerFor();
      const batch = makeBatch();
      const sendingSince = Date.now();
      await provider.send(batch, { signal: signal() });
      expect(await provider.lookup!(batch, { signal: signal(), sendingSince })).toMatchObject({
        accepted: ['+34600000001', '+34600000002'],
      });
    });

    it('reads every record of a batch of more than 50 SMS when some receivers were invalid', async () => {
      const to = Array.from({ length: 53 }, (_, i) => `+346000${String(i).padStart(5, '0')}`);
      const invalid = [to[3]!, to[40]!];
      await start({ invalidNumbers: invalid });
      const batch = makeBatch({ messages: [{ text: 'Hola', to }], estimatedCredits: 53 });
      const provider = providerFor();
      fake.script('POST /sms/{sn}/jobs', 'drop-after-accept');
      await expect(provider.send(batch, { signal: signal() })).rejects.toThrow(AmbiguousError);

      const found = await provider.lookup!(batch, { signal: signal(), sendingSince: 0 });
      expect(found).toMatchObject({ invalid, creditsCharged: 51 });
      expect(found!.accepted).toStrictEqual(to.filter((n) => !invalid.includes(n)));
      expect(found).not.toHaveProperty('creditsEstimated');
    });

    it('throws RateLimitedError with the Retry-After of a 429 on a lookup', async () => {
      const provider = providerFor();
      fake.script('GET /sms/{sn}/outgoing', { status: 429, headers: { 'Retry-After': '3' } });
      await expect(
        provider.lookup!(makeBatch(), { signal: signal(), sendingSince: 0 }),
      ).rejects.toMatchObject({
        constructor: RateLimitedError,
        retryAfterMs: 3_000,
      });
    });
  });

  describe('a 2xx is sent, whatever its body', () => {
    it.each(['empty-200', 'unreadable-200', 'accept-204'] as const)(
      'records every recipient with the estimate on %s (no lookup)',
      async (action) => {
        fake.script('POST /sms/{sn}/jobs', action);
        const receipt = await providerFor().send(makeBatch({ estimatedCredits: 4 }), { signal: signal() });
        expect(receipt).toStrictEqual({
          providerIds: [],
          accepted: ['+34600000001', '+34600000002'],
          invalid: [],
          creditsCharged: 4,
          creditsEstimated: true,
        });
        expect(fake.requests.filter((r) => r.route?.startsWith('GET /sms/{sn}/'))).toHaveLength(0);
      },
    );

    it('answers once the hook between acceptance and answer has run', async () => {
      let seenInHook = -1;
      fake.script('POST /sms/{sn}/jobs', {
        acceptThen: () => {
          seenInHook = fake.recipientsReceived().length;
          return Promise.resolve();
        },
      });
      const receipt = await providerFor().send(makeBatch(), { signal: signal() });
      expect(seenInHook).toBe(2);
      expect(receipt.accepted).toStrictEqual(['+34600000001', '+34600000002']);
    });
  });

  describe('our deadline ends the request', () => {
    it('closes the connection when the deadline passes, so no late answer can be read', async () => {
      fake.script('POST /sms/{sn}/jobs', 'accept-then-hang');
      const provider = await synced(providerFor({}, { timeoutMs: 300 }));
      const sending = provider.send(makeBatch(), { signal: signal() });
      await expect(sending).rejects.toThrow(AmbiguousError);
      await expect.poll(() => posts()[0]?.closedUnanswered, { timeout: 2_000 }).toBe(true);
    });

    it('closes the connection when the caller aborts', async () => {
      fake.script('POST /sms/{sn}/jobs', 'hang');
      const controller = new AbortController();
      const sending = providerFor().send(makeBatch(), { signal: controller.signal });
      await expect.poll(() => posts().length).toBe(1);
      controller.abort();
      await expect(sending).rejects.toThrow(AmbiguousError);
      await expect.poll(() => posts()[0]?.closedUnanswered, { timeout: 2_000 }).toBe(true);
    });
  });

  describe('rate limits and account decisions', () => {
    it.each([
      ['delta-seconds', () => '7', 7_000],
      ['an HTTP date', () => new Date(Date.now() + 30_000).toUTCString(), 30_000],
    ])('waits the Retry-After of a 429 on send (%s)', async (_label, header, expected) => {
      fake.script('POST /sms/{sn}/jobs', { status: 429, headers: { 'Retry-After': header() } });
      const err = await providerFor()
        .send(makeBatch(), { signal: signal() })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RateLimitedError);
      expect((err as RateLimitedError).retryAfterMs).toBeGreaterThan(expected - 1_500);
      expect((err as RateLimitedError).retryAfterMs).toBeLessThanOrEqual(expected);
    });

    it('pauses (AccountError NO_CREDIT) on a 400 when the credit left is below what the batch needs', async () => {
      await start({ creditsLeft: 1 });
      const sending = providerFor().send(makeBatch({ estimatedCredits: 2 }), { signal: signal() });
      await expect(sending).rejects.toThrow(AccountError);
      await expect(sending).rejects.toMatchObject({ code: 'SMSQ_OVH_NO_CREDIT' });
      expect(fake.recipientsReceived()).toHaveLength(0);
    });

    it('pauses on NOT_GRANTED_CALL with a limit on repeats, on send and on lookup', async () => {
      const provider = providerFor();
      fake.script('POST /sms/{sn}/jobs', 'not-granted');
      await expect(provider.send(makeBatch(), { signal: signal() })).rejects.toMatchObject({
        constructor: AccountError,
        code: 'SMSQ_OVH_NOT_GRANTED',
        failAfterRepeats: 3,
      });
      fake.script('GET /sms/{sn}/jobs', 'not-granted');
      await expect(
        provider.lookup!(makeBatch(), { signal: signal(), sendingSince: 0 }),
      ).rejects.toMatchObject({
        code: 'SMSQ_OVH_NOT_GRANTED',
      });
    });

    it('probes true only with at least the credits the waiting batch needs', async () => {
      const provider = providerFor();
      fake.setCreditsLeft(5);
      expect(await provider.probe({ signal: signal(), neededCredits: 6 })).toBe(false);
      expect(await provider.probe({ signal: signal(), neededCredits: 5 })).toBe(true);
      expect(await provider.probe({ signal: signal() })).toBe(true);
      fake.setCreditsLeft(0);
      expect(await provider.probe({ signal: signal() })).toBe(false);
    });

    it('exposes the settle window from the configuration', () => {
      expect(providerFor({ settleMs: 1_234 }).settleMs).toBe(1_234);
    });
  });

  describe('the call meter', () => {
    it('is awaited before every OVH call but the send itself: discovery, lookup, credit check, probe', async () => {
      let metered = 0;
      const provider = createOvhProvider(configFor(fake, { serviceName: undefined }), {
        timeoutMs: 5_000,
        logger: silent,
        meter: () => {
          metered++;
          return Promise.resolve(NOTHING_COUNTED);
        },
      });
      await provider.send(makeBatch(), { signal: signal() });
      await provider.lookup!(makeBatch(), { signal: signal(), sendingSince: 0 });
      fake.script('POST /sms/{sn}/jobs', { status: 400, body: { message: 'Invalid sender' } });
      await expect(provider.send(makeBatch(), { signal: signal() })).rejects.toThrow(PermanentError);
      await provider.probe({ signal: signal() });
      const apiCalls = fake.requests.filter((r) => r.route !== 'GET /auth/time').length;
      const sends = fake.requests.filter((r) => r.route === 'POST /sms/{sn}/jobs').length;
      expect(sends).toBe(2);
      expect(apiCalls).toBeGreaterThanOrEqual(8);
      // The batch processor takes each send from the allowance before it marks the call begun.
      expect(metered).toBe(apiCalls - sends);
    });

    it('calls nothing when a lookup is aborted while waiting for the allowance (TransientError)', async () => {
      const controller = new AbortController();
      let waiting = false;
      const provider = createOvhProvider(configFor(fake), {
        timeoutMs: 5_000,
        logger: silent,
        // A full allowance: waits until the signal fires.
        meter: (meterSignal) =>
          new Promise((_, reject) => {
            waiting = true;
            meterSignal.addEventListener('abort', () => reject(meterSignal.reason as Error));
          }),
      });
      const looking = provider.lookup!(makeBatch(), { signal: controller.signal, sendingSince: 0 });
      await expect.poll(() => waiting).toBe(true);
      controller.abort();
      await expect(looking).rejects.toThrow(TransientError);
      // Only the clock sync (never metered) reached OVH.
      expect(fake.requests.filter((r) => r.route !== 'GET /auth/time')).toHaveLength(0);
    });
  });
});
