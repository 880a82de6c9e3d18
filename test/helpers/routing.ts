import { startFakeDescom, type FakeDescom } from './fake-descom.js';
import { startFakeOvh, trustCert, writeCertFile, type FakeOvh } from './fake-ovh.js';

/** Distinct valid French mobile numbers in E.164: +33610000000, +33610000001, … */
export function frenchMobiles(count: number, offset = 0): string[] {
  return Array.from({ length: count }, (_, i) => `+3361${String(offset + i).padStart(7, '0')}`);
}

/** Distinct valid German mobile numbers in E.164: +4915110000000, … */
export function germanMobiles(count: number, offset = 0): string[] {
  return Array.from({ length: count }, (_, i) => `+49151${String(10_000_000 + offset + i)}`);
}

export interface TwoProviders {
  descom: FakeDescom;
  ovh: FakeOvh;
  /** Env for both fakes (no SMSQ_PROVIDER, no SMSQ_ROUTES), including NODE_EXTRA_CA_CERTS for worker processes. */
  env: Record<string, string>;
  /** Recipients each fake treats as sent. */
  delivered(): { descom: string[]; ovh: string[] };
  close(): Promise<void>;
}

/** The Descom and OVH loopback fakes side by side, for routing and failover tests. */
export async function startTwoProviders(): Promise<TwoProviders> {
  const descom = await startFakeDescom();
  const ovh = await startFakeOvh();
  trustCert(ovh.certPem);
  return {
    descom,
    ovh,
    env: {
      ...descom.env,
      DESCOM_RATE_PER_S: '1000',
      ...ovh.env,
      OVH_SERVICE_NAME: ovh.serviceName,
      OVH_RATE_PER_S: '1000',
      NODE_EXTRA_CA_CERTS: writeCertFile(ovh.certPem),
    },
    delivered: () => ({ descom: descom.recipientsDelivered(), ovh: ovh.recipientsReceived() }),
    async close() {
      await descom.close();
      await ovh.close();
    },
  };
}

/** Expects every recipient of `to` delivered exactly once over both providers. */
export function eachOnce(delivered: { descom: string[]; ovh: string[] }): string[] {
  return [...delivered.descom, ...delivered.ovh].sort();
}
