/**
 * The soak's verdict: what smsq says happened (each request's summary, its batches' records, the
 * ledger) held against what the fakes say they received. The fakes' records are the truth: a
 * recipient a fake received twice got the SMS twice.
 */
import type { Redis } from 'ioredis';
import { batchRecipients } from '../src/message/types.js';
import { readLedger } from '../src/queue/ledger.js';
import type { SmsqKeys } from '../src/queue/names.js';
import type { RecordStore } from '../src/queue/records.js';
import type { RequestSummary } from '../src/queue/summary.js';

/** One request the soak sent: its id, its provider, its recipients (E.164, unique over the run). */
export interface SentRequest {
  id: string;
  provider: 'descom' | 'ovh';
  to: string[];
}

export interface ChaosFigures {
  recipients: number;
  requests: number;
  requestsCompleted: number;
  /** Sums of the requests' counts. */
  outcomes: Record<string, number>;
  /** Recipients of requests not completed, plus completed requests whose counts do not add up to total. Must be 0. */
  withoutOutcome: number;
  /** Recipients counted `unknown` (may have been sent). */
  unknown: number;
  /** Recipients a fake received twice or more that are not in an `unknown` batch. Must be 0. */
  twiceOutsideUnknown: number;
  /** Recipients a fake received twice or more that are in an `unknown` batch, per provider (Descom: a bug too). */
  twiceInUnknown: { descom: number; ovh: number };
  /** Recipients of `unknown` batches per provider, split by whether the fake did receive them. */
  unknownByProvider: Record<'descom' | 'ovh', { received: number; notReceived: number }>;
  /** Recipients of `sent` batches (accepted by smsq's account) that their fake never received. Must be 0. */
  sentButNotReceived: number;
  /** Recipients a fake received whose batch smsq settled as failed, rejected or expired. Must be 0. */
  receivedButReportedNotSent: number;
  /** Recipients received by the provider they were not sent to. Must be 0. */
  wrongProvider: number;
  duplicates: {
    /** Sum of `duplicatesSent` over the requests. */
    smsqDuplicatesSent: number;
    /** Ledger lines with state `duplicate`, and the recipients they record as accepted again. */
    ledgerDuplicateLines: number;
    ledgerDuplicateRecipients: number;
    /** Extra receptions the fakes saw: sum over recipients of (times received - 1). */
    fakeDuplicates: number;
  };
  /** Recipients per state of their batch at the end (from the batch records). */
  batchStates: Record<string, number>;
  /** The first recipients behind a broken invariant, by batch (no numbers: they never leave the run). */
  offenders: Offender[];
}

export interface Offender {
  problem: 'twice' | 'sent-not-received' | 'received-not-sent' | 'wrong-provider';
  requestId: string;
  batchId?: string;
  batchState?: string;
  /** Times the recipient's fake received it. */
  times: number;
}

const MAX_OFFENDERS = 50;

/** What a fake received: each recipient with how many times it got the SMS. */
export function countReceptions(recipients: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of recipients) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

export async function tally(deps: {
  sent: readonly SentRequest[];
  summaries: ReadonlyMap<string, RequestSummary>;
  store: RecordStore;
  redis: Redis;
  keys: SmsqKeys;
  /** Per provider, the recipients its fake treats as sent (duplicates kept). */
  received: Record<'descom' | 'ovh', readonly string[]>;
}): Promise<ChaosFigures> {
  const { sent, summaries, store } = deps;
  const receptions = {
    descom: countReceptions(deps.received.descom),
    ovh: countReceptions(deps.received.ovh),
  };
  const outcomes: Record<string, number> = {};
  const batchStates: Record<string, number> = {};
  const batchOf = new Map<string, { id: string; state: string }>();
  let withoutOutcome = 0;
  let completed = 0;
  let smsqDuplicatesSent = 0;

  for (const request of sent) {
    const summary = summaries.get(request.id);
    if (!summary || summary.state !== 'completed') {
      withoutOutcome += request.to.length;
    } else {
      completed++;
      const { total, ...rest } = summary.counts;
      const counted = Object.values(rest).reduce((a, b) => a + b, 0);
      withoutOutcome += Math.abs(total - counted) + Math.max(0, request.to.length - total);
      for (const [k, v] of Object.entries(rest)) outcomes[k] = (outcomes[k] ?? 0) + v;
    }
    if (!summary) continue;
    smsqDuplicatesSent += summary.duplicatesSent;
    const batches = await store.getBatches(summary.batches.map((b) => b.id));
    for (const record of batches) {
      for (const recipient of batchRecipients(record.batch)) {
        batchOf.set(recipient, { id: record.batch.id, state: record.state });
        batchStates[record.state] = (batchStates[record.state] ?? 0) + 1;
      }
    }
  }

  let twiceOutsideUnknown = 0;
  const twiceInUnknown = { descom: 0, ovh: 0 };
  const unknownByProvider = {
    descom: { received: 0, notReceived: 0 },
    ovh: { received: 0, notReceived: 0 },
  };
  let sentButNotReceived = 0;
  let receivedButReportedNotSent = 0;
  let wrongProvider = 0;
  let fakeDuplicates = 0;
  const offenders: Offender[] = [];
  const offend = (problem: Offender['problem'], request: SentRequest, recipient: string, times: number) => {
    const batch = batchOf.get(recipient);
    if (offenders.length < MAX_OFFENDERS)
      offenders.push({ problem, requestId: request.id, batchId: batch?.id, batchState: batch?.state, times });
  };
  for (const request of sent) {
    const other = request.provider === 'descom' ? 'ovh' : 'descom';
    for (const recipient of request.to) {
      const times = receptions[request.provider].get(recipient) ?? 0;
      const state = batchOf.get(recipient)?.state;
      if (state === 'unknown') unknownByProvider[request.provider][times > 0 ? 'received' : 'notReceived']++;
      if ((receptions[other].get(recipient) ?? 0) > 0) {
        wrongProvider++;
        offend('wrong-provider', request, recipient, times);
      }
      if (times > 1) {
        fakeDuplicates += times - 1;
        if (state === 'unknown') twiceInUnknown[request.provider]++;
        else twiceOutsideUnknown++;
        offend('twice', request, recipient, times);
      }
      if (state === 'sent' && times === 0) {
        sentButNotReceived++;
        offend('sent-not-received', request, recipient, times);
      }
      if (times > 0 && (state === 'failed' || state === 'rejected' || state === 'expired')) {
        receivedButReportedNotSent++;
        offend('received-not-sent', request, recipient, times);
      }
    }
  }

  let ledgerDuplicateLines = 0;
  let ledgerDuplicateRecipients = 0;
  for await (const entry of readLedger(deps.redis, deps.keys.ledger)) {
    if (entry.state !== 'duplicate') continue;
    ledgerDuplicateLines++;
    ledgerDuplicateRecipients += entry.accepted;
  }

  return {
    recipients: sent.reduce((n, r) => n + r.to.length, 0),
    requests: sent.length,
    requestsCompleted: completed,
    outcomes,
    withoutOutcome,
    unknown: outcomes.unknown ?? 0,
    twiceOutsideUnknown,
    twiceInUnknown,
    unknownByProvider,
    sentButNotReceived,
    receivedButReportedNotSent,
    wrongProvider,
    duplicates: { smsqDuplicatesSent, ledgerDuplicateLines, ledgerDuplicateRecipients, fakeDuplicates },
    batchStates,
    offenders,
  };
}

/** The invariants a run must keep; each broken one is described in a sentence. */
export function brokenInvariants(f: ChaosFigures): string[] {
  const broken: string[] = [];
  if (f.twiceOutsideUnknown > 0)
    broken.push(`${f.twiceOutsideUnknown} recipient(s) received twice outside unknown batches`);
  if (f.twiceInUnknown.descom > 0)
    broken.push(
      `${f.twiceInUnknown.descom} Descom recipient(s) of unknown batches received twice (never resent in report mode)`,
    );
  if (f.withoutOutcome > 0) broken.push(`${f.withoutOutcome} recipient(s) without an outcome`);
  if (f.sentButNotReceived > 0)
    broken.push(`${f.sentButNotReceived} recipient(s) reported sent but never received`);
  if (f.receivedButReportedNotSent > 0)
    broken.push(`${f.receivedButReportedNotSent} recipient(s) received but reported failed/rejected/expired`);
  if (f.wrongProvider > 0) broken.push(`${f.wrongProvider} recipient(s) received by the wrong provider`);
  const d = f.duplicates;
  if (d.smsqDuplicatesSent !== d.fakeDuplicates)
    broken.push(`smsq reports ${d.smsqDuplicatesSent} duplicate(s), the fakes saw ${d.fakeDuplicates}`);
  if (d.ledgerDuplicateRecipients !== d.smsqDuplicatesSent)
    broken.push(
      `the ledger records ${d.ledgerDuplicateRecipients} duplicate recipient(s), the requests ${d.smsqDuplicatesSent}`,
    );
  return broken;
}
