import { batchRecipients } from '../../src/message/types.js';
import type { SmsqWorkers } from '../../src/queue/workers.js';
import type { TestSmsq } from './test-smsq.js';

/** Every number accepted by the simulator for these requests, one entry per acceptance. */
export async function acceptedNumbers(
  smsq: { workers: SmsqWorkers } | Pick<TestSmsq, 'workers'>,
  requestIds: readonly string[],
): Promise<string[]> {
  const { store } = smsq.workers.context;
  const out: string[] = [];
  for (const id of requestIds) {
    const request = await store.getRequest(id);
    if (!request) continue;
    for (const record of await store.getBatches(request.batchIds)) {
      if (record.state !== 'sent' || !record.receipt) continue;
      const invalid = new Set(record.receipt.invalid);
      out.push(...batchRecipients(record.batch).filter((n) => !invalid.has(n)));
    }
  }
  return out;
}
