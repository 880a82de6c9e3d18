import { describe, expect, it } from 'vitest';
import { startFakeDescom } from '../helpers/fake-descom.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

describe('Descom delivery reports (shipment polling)', () => {
  async function start(opts: Parameters<typeof startFakeDescom>[0] = {}) {
    const fake = await startFakeDescom(opts);
    onTeardown('fake Descom', () => fake.close());
    const smsq = await startTestSmsq({
      api: false,
      env: {
        SMSQ_PROVIDER: 'descom',
        ...fake.env,
        DESCOM_RATE_PER_S: '1000',
        // Horizon: (48 h + 1 h) × 3 / 30000 ≈ 17.6 s would be long; 1 ms units give 5.9 s.
        SMSQ_DLR_POLL_MS: '1',
      },
    });
    return { fake, client: smsq.client, workers: smsq.workers };
  }

  it('polls GET /api/shipment/{id}, keeps its shipment-level fields, and ends recipients unreported at the horizon', async () => {
    const { fake, client, workers } = await start();
    const to = spanishMobiles(30);
    const { id } = await client.send({ to, text: 'Hola' });
    await client.wait(id, { timeoutMs: 10_000 });
    await eventually(async () => (await client.get(id)).delivery.pending === 0, 15_000);
    expect((await client.get(id)).delivery).toEqual({
      pending: 0,
      delivered: 0,
      undelivered: 0,
      expired: 0,
      unreported: 30,
    });
    const shipmentCalls = fake.requests.filter(
      (r) => r.method === 'GET' && r.path.startsWith('/api/shipment/'),
    );
    expect(shipmentCalls.length).toBeGreaterThan(1);
    expect(shipmentCalls.every((r) => r.headers['dsms-user'] === fake.user)).toBe(true);
    const [batch] = (await client.get(id)).batches;
    expect(shipmentCalls[0]!.path).toBe(`/api/shipment/${batch!.providerIds[0]}`);
    // The shipment's own fields are kept beside the recipients' state.
    const delivery = await workers.deliveryReports.store.getBatch(batch!.id);
    expect(JSON.parse(delivery!.notes.shipment!)).toMatchObject({ num_messages: '30', num_sms: '30' });
  }, 30_000);

  it('maps per recipient only what the shipment lists (national numbers), the rest unreported', async () => {
    const { client } = await start({
      // A shipment that lists its first three recipients: delivered, failed, and one not final.
      shipmentDetails: (recipients) => ({
        messages: [
          { to: recipients[0]!.replace(/^\+34/, ''), status: 'DELIVERED' },
          { to: recipients[1]!.replace(/^\+34/, ''), status: 'FAILED' },
          { to: recipients[2]!.replace(/^\+34/, ''), status: 'SENT' },
        ],
      }),
    });
    const to = spanishMobiles(10);
    const { id } = await client.send({ to, text: 'Hola' });
    await client.wait(id, { timeoutMs: 10_000 });
    await eventually(async () => (await client.get(id)).delivery.pending === 0, 15_000);
    expect((await client.get(id)).delivery).toEqual({
      pending: 0,
      delivered: 1,
      undelivered: 1,
      expired: 0,
      unreported: 8,
    });
    const { items } = await client.recipients(id, { status: 'undelivered' });
    expect(items).toHaveLength(1);
    expect(items[0]!.delivery).toMatchObject({ status: 'undelivered', code: 'FAILED' });
  }, 30_000);
});
