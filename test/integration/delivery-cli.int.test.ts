import { describe, expect, it } from 'vitest';
import { runSmsq } from '../helpers/cli.js';
import { startFakeOvh, writeCertFile } from '../helpers/fake-ovh.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

describe('smsq recipients and smsq ovh callback set', () => {
  it('lists a request’s recipients as JSON lines or CSV, filtered by status', async () => {
    const pipeline = await startTestSmsq({
      api: false,
      env: {
        SIMULATOR_DLR_DELAY_MS: '50',
        SIMULATOR_DELIVERED_RATE: '0.5',
        SMSQ_DLR_POLL_MS: '50',
      },
    });
    const to = spanishMobiles(40);
    const { id } = await pipeline.client.send({ to, text: 'Hola' });
    await pipeline.client.wait(id, { timeoutMs: 10_000 });
    await eventually(async () => (await pipeline.client.get(id)).delivery.pending === 0);
    const env = { REDIS_URL: pipeline.config.redisUrl, SMSQ_PREFIX: pipeline.config.prefix };

    const jsonl = await runSmsq(['recipients', id], env);
    expect(jsonl.code).toBe(0);
    const items = jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { to: string; delivery: { status: string } });
    expect(items.map((i) => i.to)).toEqual(to);

    const csv = await runSmsq(['recipients', id, '--status', 'undelivered', '--format', 'csv'], env);
    expect(csv.code).toBe(0);
    const [header, ...rows] = csv.stdout.trim().split('\n');
    expect(header).toBe('to,outcome,status,at,code,provider,providerId,batchId');
    const undelivered = items.filter((i) => i.delivery.status === 'undelivered').length;
    expect(rows).toHaveLength(undelivered);
    expect(rows.every((r) => r.split(',')[2] === 'undelivered' && r.split(',')[4] === 'sim')).toBe(true);

    const unknown = await runSmsq(['recipients', 'no-such-request'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No request with id no-such-request');
  });

  it('sets the OVH account callBack to the push route and prints it without the token', async () => {
    const fake = await startFakeOvh();
    onTeardown('fake OVH', () => fake.close());
    const token = 'cli-token-0123456789abcdef';
    const result = await runSmsq(['ovh', 'callback', 'set', 'https://sms.example.com/'], {
      ...fake.env,
      OVH_DLR_TOKEN: token,
      NODE_EXTRA_CA_CERTS: writeCertFile(fake.certPem),
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(fake.callBack()).toBe(`https://sms.example.com/v1/providers/ovh/dlr/${token}`);
    expect(result.stdout).toContain('https://sms.example.com/v1/providers/ovh/dlr/<OVH_DLR_TOKEN>');
    expect(result.stdout).not.toContain(token);
    expect(fake.requests.find((r) => r.method === 'PUT')?.path).toBe(`/sms/${fake.serviceName}`);
  });
});
