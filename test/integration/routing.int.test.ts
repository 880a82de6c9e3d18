/**
 * Routing by destination (SMSQ_ROUTES): real Redis, real workers, the Descom and OVH loopback fakes.
 */
import { describe, expect, it } from 'vitest';
import { spanishMobiles } from '../helpers/numbers.js';
import { eachOnce, frenchMobiles, germanMobiles, startTwoProviders } from '../helpers/routing.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';

const ROUTES = JSON.stringify([
  { match: { prefix: '+33' }, providers: ['ovh', 'descom'] },
  { match: { country: 'ES' }, providers: ['descom', 'ovh'] },
]);

describe('Routing by destination', () => {
  async function start(env: Record<string, string> = {}) {
    const fakes = await startTwoProviders();
    onTeardown('provider fakes', () => fakes.close());
    const smsq = await startTestSmsq({
      api: false,
      env: { ...fakes.env, SMSQ_PROVIDER: 'simulator', SMSQ_ROUTES: ROUTES, ...env },
    });
    return { fakes, client: smsq.client };
  }

  it('splits one mixed request by prefix and by country; unmatched numbers go to SMSQ_PROVIDER', async () => {
    const { fakes, client } = await start();
    const fr = frenchMobiles(7);
    const es = spanishMobiles(5);
    const de = germanMobiles(3);
    const { id } = await client.send({
      messages: [
        { to: [...fr.slice(0, 4), ...es.slice(0, 2), de[0]!], text: 'Bonjour' },
        { to: [...fr.slice(4), ...es.slice(2), ...de.slice(1)], text: 'Hola' },
      ],
    });
    const result = await client.wait(id, { timeoutMs: 15_000 });

    expect(result.counts).toMatchObject({ total: 15, accepted: 15, failed: 0 });
    expect(fakes.ovh.recipientsReceived().sort()).toEqual([...fr].sort());
    expect(fakes.descom.recipientsDelivered().sort()).toEqual([...es].sort());
    const byProvider = (p: string) =>
      result.batches.filter((b) => b.provider === p).reduce((n, b) => n + b.recipients, 0);
    expect({
      ovh: byProvider('ovh'),
      descom: byProvider('descom'),
      simulator: byProvider('simulator'),
    }).toEqual({
      ovh: 7,
      descom: 5,
      simulator: 3,
    });
    // OVH takes one text per job: two texts to French numbers are two OVH batches.
    expect(result.batches.filter((b) => b.provider === 'ovh')).toHaveLength(2);
    expect(result.batches.every((b) => b.state === 'sent' && b.history === undefined)).toBe(true);
  });

  it("a request's provider overrides the routes", async () => {
    const { fakes, client } = await start();
    const to = [...frenchMobiles(3), ...spanishMobiles(2)];
    const { id } = await client.send({ to, text: 'Hola', provider: 'descom' });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.counts).toMatchObject({ total: 5, accepted: 5 });
    expect(result.batches.map((b) => b.provider)).toEqual(['descom']);
    expect(eachOnce(fakes.delivered())).toEqual([...to].sort());
    expect(fakes.ovh.recipientsReceived()).toEqual([]);
  });

  it('without SMSQ_ROUTES, every number goes to SMSQ_PROVIDER as before', async () => {
    const { fakes, client } = await start({ SMSQ_ROUTES: '', SMSQ_PROVIDER: 'descom' });
    const to = [...frenchMobiles(3), ...spanishMobiles(2)];
    const { id } = await client.send({ to, text: 'Hola' });
    const result = await client.wait(id, { timeoutMs: 15_000 });
    expect(result.batches.map((b) => b.provider)).toEqual(['descom']);
    expect(fakes.descom.recipientsDelivered().sort()).toEqual([...to].sort());
  });
});
