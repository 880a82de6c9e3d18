import { startFakeOvh, trustCert, type FakeOvh, type FakeOvhOptions } from './fake-ovh.js';
import { startTestApi, waitCompleted, type RunningApi } from './http-app.js';

export const API_HEADERS = { authorization: 'Bearer test-key-1', 'content-type': 'application/json' };
export const DLR_TOKEN = 'dlr-token-0123456789abcdef';

export interface OvhDeliveryApi {
  fake: FakeOvh;
  api: RunningApi;
  /** POST /v1/messages; resolves with the request id once it is completed. */
  sendAndComplete(body: Record<string, unknown>): Promise<string>;
  get(id: string): Promise<Record<string, unknown> & { delivery: Record<string, number> }>;
  /** Every recipient, through every page of GET /v1/messages/:id/recipients. */
  allRecipients(id: string, query?: string, limit?: number): Promise<Record<string, unknown>[]>;
  /** Report calls the fake received: lists by delivery receipt and single-SMS fetches. */
  reportCalls(): { lists: number; details: number };
  close(): Promise<void>;
}

/** The HTTP app and workers on OVH through the fake, with the push route's token set. */
export async function startOvhDeliveryApi(
  fakeOpts: FakeOvhOptions,
  env: Record<string, string> = {},
): Promise<OvhDeliveryApi> {
  const fake = await startFakeOvh({ creditsLeft: 1_000_000, ...fakeOpts });
  trustCert(fake.certPem);
  const api = await startTestApi({
    env: {
      SMSQ_PROVIDER: 'ovh',
      OVH_ENDPOINT: fake.endpointUrl,
      OVH_APP_KEY: fake.appKey,
      OVH_APP_SECRET: fake.appSecret,
      OVH_CONSUMER_KEY: fake.consumerKey,
      OVH_RATE_PER_S: '1000',
      OVH_DLR_TOKEN: DLR_TOKEN,
      OVH_VALIDITY_MINUTES: '1',
      ...env,
    },
  });
  return {
    fake,
    api,
    async sendAndComplete(body) {
      const res = await fetch(`${api.url}/v1/messages`, {
        method: 'POST',
        headers: API_HEADERS,
        body: JSON.stringify(body),
      });
      if (res.status !== 202)
        throw new Error(`POST /v1/messages answered ${res.status}: ${await res.text()}`);
      const { id } = (await res.json()) as { id: string };
      await waitCompleted(api, id, API_HEADERS, 30_000);
      return id;
    },
    async get(id) {
      const res = await fetch(`${api.url}/v1/messages/${id}`, { headers: API_HEADERS });
      return (await res.json()) as Record<string, unknown> & { delivery: Record<string, number> };
    },
    async allRecipients(id, query = '', limit = 1_000) {
      const items: Record<string, unknown>[] = [];
      let cursor: string | null = null;
      do {
        const q = new URLSearchParams(query);
        q.set('limit', String(limit));
        if (cursor) q.set('cursor', cursor);
        const res = await fetch(`${api.url}/v1/messages/${id}/recipients?${q.toString()}`, {
          headers: API_HEADERS,
        });
        if (res.status !== 200) throw new Error(`recipients answered ${res.status}: ${await res.text()}`);
        const page = (await res.json()) as { items: Record<string, unknown>[]; nextCursor: string | null };
        items.push(...page.items);
        cursor = page.nextCursor;
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
    async close() {
      await api.close();
      await fake.close();
    },
  };
}
