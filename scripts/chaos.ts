/**
 * The chaos soak (not part of the test suite): two real worker processes against a private
 * redis-server (`appendfsync always`) and both fake providers on loopback, N recipients sent in many
 * requests through the SmsClient, random faults injected throughout (provider faults, workers
 * SIGKILLed or frozen past their lock, Redis SIGKILLed and restarted), then a verdict from the fakes'
 * own records. Exits non-zero when an invariant is broken. See docs/chaos.md.
 *
 *   npx tsx scripts/chaos.ts --minutes 10 --seed 42 --recipients 20000
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SmsClient } from '../src/client.js';
import { smsqKeys } from '../src/queue/names.js';
import { RecordStore } from '../src/queue/records.js';
import type { RequestSummary } from '../src/queue/summary.js';
import { createWorkerConnection } from '../src/redis.js';
import { startFakeDescom } from '../test/helpers/fake-descom.js';
import { startFakeOvh, writeCertFile } from '../test/helpers/fake-ovh.js';
import { spanishMobiles } from '../test/helpers/numbers.js';
import { startPrivateRedis } from '../test/helpers/redis-server.js';
import { FaultInjector, sleep } from './chaos-faults.js';
import { Random } from './chaos-random.js';
import { brokenInvariants, tally, type SentRequest } from './chaos-tally.js';
import { WorkerPool } from './chaos-workers.js';

const LOCK_DURATION_MS = 2_000;
const PREFIX = 'chaos';
/** Most recipients per request: OVH batches hold 50 here, so a big request makes two batches. */
const MAX_REQUEST_SIZE = 80;
const TEXTS = ['Bonjour', 'Hola, tu cita es mañana a las 10', 'Code 1234 ✓ valable 5 min'];

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    seed: { type: 'string' },
    recipients: { type: 'string', default: '20000' },
    workers: { type: 'string', default: '2' },
    out: { type: 'string', default: 'chaos-results.json' },
  },
});
const minutes = Number(args.minutes);
const seed = args.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(args.seed);
const recipientCount = Number(args.recipients);
if (!(minutes > 0) || !Number.isInteger(seed) || !(recipientCount > 0)) {
  throw new Error(
    'usage: npx tsx scripts/chaos.ts [--minutes 10] [--seed N] [--recipients 20000] [--workers 2] [--out FILE]',
  );
}

/** Retries `fn` while it throws (Redis down, a worker restarting), until `deadline` (epoch ms). */
async function retrying<T>(fn: () => Promise<T>, deadline: number, pauseMs = 250): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(pauseMs);
    }
  }
}

async function main(): Promise<number> {
  // Two streams, so the request plan does not depend on how the faults' draws interleave with it.
  const random = new Random(seed);
  const faultRandom = new Random(seed ^ 0x9e3779b9);
  const runMs = minutes * 60_000;
  const began = Date.now();
  // Requests go out over the first 70 % of the run, faults over the first 80 %; the rest is quiet,
  // so every batch can settle (OVH's settle window, retries) before the verdict.
  const sendUntil = began + runMs * 0.7;
  const faultsUntil = began + runMs * 0.8;
  const drainDeadline = began + runMs + 120_000;
  const runDir = mkdtempSync(join(tmpdir(), `smsq-chaos-${seed}-`));
  console.log(`[chaos] seed ${seed}, ${minutes} min, ${recipientCount} recipients; logs in ${runDir}`);

  const redis = await startPrivateRedis({ appendfsync: 'always' });
  const descom = await startFakeDescom({ balance: 100 * recipientCount });
  const ovh = await startFakeOvh({ creditsLeft: 100 * recipientCount });
  const env: Record<string, string> = {
    REDIS_URL: redis.url,
    SMSQ_PREFIX: PREFIX,
    SMSQ_REQUIRE_DURABLE_REDIS: 'true',
    SMSQ_LOCK_DURATION_MS: String(LOCK_DURATION_MS),
    SMSQ_PROVIDER_TIMEOUT_MS: '2000',
    SMSQ_BACKOFF_MS: '100',
    SMSQ_PROBE_INTERVAL_MS: '500',
    SMSQ_ENQUEUE_REPAIR_AFTER_MS: '5000',
    SMSQ_SHUTDOWN_TIMEOUT_MS: '1000',
    ...descom.env,
    DESCOM_RATE_PER_S: '50',
    ...ovh.env,
    OVH_SERVICE_NAME: ovh.serviceName,
    OVH_RATE_PER_S: '50',
    OVH_BATCH_SIZE: '50',
    OVH_SETTLE_MS: '3000',
    NODE_EXTRA_CA_CERTS: writeCertFile(ovh.certPem),
    LOG_LEVEL: 'info',
  };
  const workers = new WorkerPool(env, Number(args.workers), runDir);
  await workers.start();
  const client = new SmsClient({ redis: redis.url, prefix: PREFIX });
  const faults = new FaultInjector(
    { descom, ovh, redis, workers, random: faultRandom, lockDurationMs: LOCK_DURATION_MS },
    (runMs * 0.8) / 60_000,
  );

  // Recipients, cut into requests of 1 to MAX_REQUEST_SIZE, spread evenly over the sending phase.
  const numbers = spanishMobiles(recipientCount);
  const sent: SentRequest[] = [];
  const meanGapMs = (sendUntil - began) / Math.max(1, recipientCount / (MAX_REQUEST_SIZE / 2));
  let sendFailures = 0;
  const sending = (async () => {
    let next = 0;
    while (next < numbers.length) {
      const size = random.int(1, Math.min(MAX_REQUEST_SIZE, numbers.length - next));
      const to = numbers.slice(next, next + size);
      next += size;
      const provider = random.chance(0.5) ? 'descom' : 'ovh';
      const text = random.pick(TEXTS);
      const key = `chaos-${seed}-${sent.length}`;
      const gapMs = random.int(0, Math.round(2 * meanGapMs));
      try {
        // The same idempotency key on each try: a send whose answer was lost is not enqueued twice.
        const { id } = await retrying(
          () => client.send({ to, text, provider }, { idempotencyKey: key }),
          drainDeadline,
        );
        sent.push({ id, provider, to });
      } catch (err) {
        sendFailures++;
        console.log(`[chaos] a send could not be enqueued before the deadline: ${(err as Error).name}`);
      }
      await sleep(Math.max(0, Math.min(gapMs, sendUntil - Date.now())));
    }
  })();

  const progress = setInterval(() => {
    const elapsed = Math.round((Date.now() - began) / 1000);
    const injected = Object.values(faults.counts).reduce((a, b) => a + b, 0);
    console.log(`[chaos] ${elapsed}s: ${sent.length} requests enqueued, ${injected} faults injected`);
  }, 30_000);

  await Promise.all([sending, faults.run(faultsUntil)]);
  console.log(
    `[chaos] faults over (${Math.round((Date.now() - began) / 1000)}s); waiting for every request to complete`,
  );

  // Wait (bounded) for every request to complete.
  const summaries = new Map<string, RequestSummary>();
  while (Date.now() < drainDeadline) {
    for (const request of sent) {
      if (summaries.get(request.id)?.state === 'completed') continue;
      try {
        summaries.set(request.id, await client.get(request.id));
      } catch {
        // Redis answering again is the next round's business.
      }
    }
    if (sent.every((r) => summaries.get(r.id)?.state === 'completed') && Date.now() > began + runMs) break;
    await sleep(1_000);
  }
  clearInterval(progress);
  // A late acceptance scripted near the end creates its job within seconds: let it land first.
  await sleep(6_000);

  const redisConn = createWorkerConnection(redis.url);
  const keys = smsqKeys(PREFIX);
  const figures = await tally({
    sent,
    summaries,
    store: new RecordStore(redisConn, keys),
    redis: redisConn,
    keys,
    received: { descom: descom.recipientsDelivered(), ovh: ovh.recipientsReceived() },
  });
  const broken = brokenInvariants(figures);
  const results = {
    seed,
    minutes,
    recipientsRequested: recipientCount,
    elapsedS: Math.round((Date.now() - began) / 1000),
    ...figures,
    sendFailures,
    faults: faults.counts,
    faultDowntimeMs: faults.downtimeMs,
    workerUnexpectedExits: workers.unexpectedExits,
    descomSendRequests: descom.requests.filter((r) => r.path === '/api/sms/send').length,
    ovhPostRequests: ovh.requests.filter((r) => r.route === 'POST /sms/{sn}/jobs').length,
    brokenInvariants: broken,
    logDir: runDir,
  };
  writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(runDir, 'faults.log'), `${faults.events.join('\n')}\n`);
  writeFileSync(join(runDir, 'chaos-results.json'), `${JSON.stringify(results, null, 2)}\n`);
  printReport(results, broken);

  redisConn.disconnect();
  await client.close();
  await workers.stop();
  await descom.close();
  await ovh.close();
  await redis.destroy();
  return broken.length === 0 && sendFailures === 0 ? 0 : 1;
}

function printReport(
  results: Record<string, unknown> & Awaited<ReturnType<typeof tally>>,
  broken: string[],
): void {
  const r = results;
  const line = (label: string, value: unknown) => console.log(`  ${label.padEnd(44)} ${String(value)}`);
  console.log('\n=== chaos soak ===');
  line('seed / minutes / recipients', `${String(r.seed)} / ${String(r.minutes)} / ${r.recipients}`);
  line('requests (completed / enqueued)', `${r.requestsCompleted} / ${r.requests}`);
  line('outcomes', JSON.stringify(r.outcomes));
  line('recipients sent twice outside unknown (=0)', r.twiceOutsideUnknown);
  line('recipients twice in unknown batches (Descom =0)', JSON.stringify(r.twiceInUnknown));
  line('recipients without an outcome (=0)', r.withoutOutcome);
  line('reported sent, never received (=0)', r.sentButNotReceived);
  line('received, reported failed/rejected/expired (=0)', r.receivedButReportedNotSent);
  line('received by the wrong provider (=0)', r.wrongProvider);
  line('unknown', r.unknown);
  line('unknown by provider (received by the fake or not)', JSON.stringify(r.unknownByProvider));
  line('duplicates: smsq duplicatesSent', r.duplicates.smsqDuplicatesSent);
  line(
    'duplicates: ledger lines / recipients',
    `${r.duplicates.ledgerDuplicateLines} / ${r.duplicates.ledgerDuplicateRecipients}`,
  );
  line('duplicates: seen by the fakes', r.duplicates.fakeDuplicates);
  line('faults injected', JSON.stringify(r.faults));
  line('worker exits not caused by the soak', JSON.stringify(r.workerUnexpectedExits));
  line('sends not enqueued before the deadline', String(r.sendFailures));
  for (const o of r.offenders.slice(0, 10)) console.log(`  offender: ${JSON.stringify(o)}`);
  console.log(broken.length === 0 ? '\nOK: every invariant held' : `\nBROKEN:\n  - ${broken.join('\n  - ')}`);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error('[chaos] the soak itself failed:', err);
    process.exitCode = 3;
  },
);
