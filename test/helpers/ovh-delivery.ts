import { startFakeOvh, trustCert, type FakeOvh, type FakeOvhOptions } from './fake-ovh.js';
import { waitCompleted } from './http-app.js';
import { onTeardown } from './teardown.js';
import { startTestSmsq, type TestSmsq } from './test-smsq.js';

export const DLR_TOKEN = 'dlr-token-0123456789abcdef';

export interface OvhDeliveryApi {
  fake: FakeOvh;
  smsq: TestSmsq;
  /** POST /v1/messages; resolves with the request id once it is completed. */
  sendAndComplete(body: Record<string, unknown>): Promise<string>;
  get(id: string): Promise<Record<string, unknown> & { delivery: Record<string, number> }>;
  /** Every recipient, through every page of GET /v1/messages/:id/recipients. */
  allRecipients(id: string, query?: string, limit?: number): Promise<Record<string, unknown>[]>;
  /** Report calls the fake received: lists by delivery receipt and single-SMS fetches. */
  reportCalls(): { lists: number; details: number };
}

/**
 * The HTTP app and workers on OVH through the fake, with the push route's token set. Both close
 * when the test ends (teardown registry).
 */
export async function startOvhDeliveryApi(
  fakeOpts: FakeOvhOptions,
  env: Record<string, string> = {},
): Promise<OvhDeliveryApi> {
  const fake = await startFakeOvh({ creditsLeft: 1_000_000, ...fakeOpts });
  onTeardown('fake OVH', () => fake.close());
  trustCert(fake.certPem);
  const smsq = await startTestSmsq({
    logLevel: 'info',
    env: {
      SMSQ_PROVIDER: 'ovh',
      ...fake.env,
      OVH_RATE_PER_S: '1000',
      OVH_DLR_TOKEN: DLR_TOKEN,
      OVH_VALIDITY_MINUTES: '1',
      ...env,
    },
  });
  return {
    fake,
    smsq,
    async sendAndComplete(body) {
      const res = await smsq.api<{ id: string }>('/v1/messages', { body });
      if (res.status !== 202)
        throw new Error(`POST /v1/messages answered ${res.status}: ${JSON.stringify(res.body)}`);
      await waitCompleted(smsq, res.body.id, smsq.headers, 30_000);
      return res.body.id;
    },
    async get(id) {
      return (
        await smsq.api<Record<string, unknown> & { delivery: Record<string, number> }>(`/v1/messages/${id}`)
      ).body;
    },
    async allRecipients(id, query = '', limit = 1_000) {
      const items: Record<string, unknown>[] = [];
      let cursor: string | null = null;
      do {
        const q = new URLSearchParams(query);
        q.set('limit', String(limit));
        if (cursor) q.set('cursor', cursor);
        const res = await smsq.api<{ items: Record<string, unknown>[]; nextCursor: string | null }>(
          `/v1/messages/${id}/recipients?${q.toString()}`,
        );
        if (res.status !== 200)
          throw new Error(`recipients answered ${res.status}: ${JSON.stringify(res.body)}`);
        items.push(...res.body.items);
        cursor = res.body.nextCursor;
      } while (cursor);
      return items;
    },
    reportCalls() {
      const gets = fake.requests.filter(
        (r) => r.route === 'GET /sms/{sn}/outgoing' && r.query.has('deliveryReceipt'),
      );
      const details = fake.requests.filter((r) => r.route === 'GET /sms/{sn}/outgoing/{id}');
      return { lists: gets.length, details: details.length };
    },
  };
}
