import { afterEach, describe, expect, it } from 'vitest';
import type { FakeOvhReportPlan } from '../helpers/fake-ovh.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { eventually } from '../helpers/pipeline.js';
import { startOvhDeliveryApi, type OvhDeliveryApi } from '../helpers/ovh-delivery.js';

describe('a 10,000-recipient OVH request through the fake', () => {
  let run: OvhDeliveryApi | undefined;
  afterEach(async () => {
    await run?.close();
    run = undefined;
  });

  it('reaches final delivery states, visible in GET /v1/messages/:id and /recipients', async () => {
    const to = spanishMobiles(10_000);
    // 97 % delivered, 2 % failed (some at once, some later), 1 % never final (expired at the horizon).
    const plans = new Map<string, FakeOvhReportPlan>(
      to.map((n, i) => {
        const r = i % 100;
        const plan: FakeOvhReportPlan =
          r === 0
            ? 'never'
            : r < 3
              ? { afterMs: 50 + (i % 7) * 200, dlr: r === 1 ? 2 : 16, ptt: 23 }
              : { afterMs: (i % 5) * 300, dlr: 1, ptt: 4 };
        return [n, plan];
      }),
    );
    run = await startOvhDeliveryApi(
      { reportPlan: (receiver) => plans.get(receiver) ?? 'never' },
      { SMSQ_DLR_POLL_MS: '30' },
    );
    const id = await run.sendAndComplete({ to, text: 'Votre code: 1234' });
    await eventually(async () => (await run!.get(id)).delivery.pending === 0, 30_000);
    const result = await run.get(id);
    expect(result.counts).toMatchObject({ total: 10_000, accepted: 10_000 });
    expect(result.delivery).toEqual({
      pending: 0,
      delivered: 9_700,
      undelivered: 200,
      expired: 100,
      unreported: 0,
    });

    const items = await run.allRecipients(id);
    expect(items).toHaveLength(10_000);
    expect(new Set(items.map((i) => i.to)).size).toBe(10_000);
    expect(
      items.every((i) =>
        ['delivered', 'undelivered', 'expired'].includes((i.delivery as { status: string }).status),
      ),
    ).toBe(true);
    expect(await run.allRecipients(id, 'status=expired')).toHaveLength(100);
    expect(await run.allRecipients(id, 'status=undelivered', 37)).toHaveLength(200);

    const calls = run.reportCalls();
    const perThousand = ((calls.lists + calls.details) * 1_000) / 10_000;
    console.log(
      `report calls for 10,000 recipients: ${calls.lists} lists + ${calls.details} single-SMS GETs = ${perThousand} per 1,000 recipients`,
    );
    // 20 batches: 3 lists per poll over the whole schedule, 2 order checks per batch, no GET per SMS.
    expect(calls.details).toBe(40);
    expect(perThousand).toBeLessThan(50);
  }, 60_000);
});
