import type { DecisionTable } from '../decisions.js';

/**
 * Every outcome of a simulated send: the random failures of SIMULATOR_FAILURE_RATE, and the faults
 * a test or a demo scripts (see `SimulatorControls`), each decided like a real provider's answer.
 */
export const SIMULATOR_DECISIONS: DecisionTable = [
  {
    when: 'accepted',
    kind: 'sent',
    code: 'SMSQ_SIMULATED_SENT',
    mayHaveLeft: true,
    why: 'the simulator accepted the batch (nothing is sent to any phone)',
  },
  {
    when: 'failure rate',
    kind: 'transient',
    code: 'SMSQ_SIMULATED_FAILURE',
    mayHaveLeft: false,
    why: 'simulated provider failure (SIMULATOR_FAILURE_RATE)',
  },
  // Aborted during the simulated latency, before the send "went out".
  {
    when: 'never-left',
    kind: 'transient',
    code: 'SMSQ_SIMULATED_CANCELLED',
    mayHaveLeft: false,
    why: 'simulated send aborted before it went out',
  },
  {
    when: 'unavailable',
    kind: 'transient',
    code: 'SMSQ_SIMULATED_UNAVAILABLE',
    mayHaveLeft: false,
    why: 'the simulated provider is unavailable and did not act',
  },
  {
    when: 'rate-limited',
    kind: 'rate-limited',
    code: 'SMSQ_PROVIDER_RATE_LIMITED',
    mayHaveLeft: false,
    why: 'the simulated provider rate-limited the request',
    retryAfterDefaultMs: 1_000,
  },
  {
    when: 'no credit',
    kind: 'account',
    code: 'SMSQ_SIMULATED_NO_CREDIT',
    mayHaveLeft: false,
    why: 'the simulated account has too little credit',
  },
  {
    when: 'rejected',
    kind: 'permanent',
    code: 'SMSQ_SIMULATED_REJECTED',
    mayHaveLeft: false,
    why: 'the simulated provider rejected the batch',
  },
  // The send was performed, then its answer lost (a reset after the request went out).
  {
    when: 'answer lost',
    kind: 'ambiguous',
    code: 'SMSQ_SIMULATED_ANSWER_LOST',
    mayHaveLeft: true,
    why: 'the simulated answer was lost; the batch may have been sent',
  },
  // No answer until the call's deadline (or the caller) gave up.
  {
    when: 'no answer',
    kind: 'ambiguous',
    code: 'SMSQ_SIMULATED_TIMEOUT',
    mayHaveLeft: true,
    why: 'the simulated provider did not answer in time; the batch may have been sent',
  },
  {
    when: 'otherwise',
    kind: 'ambiguous',
    code: 'SMSQ_SIMULATED_UNEXPECTED',
    mayHaveLeft: true,
    why: 'an unexpected simulated failure',
  },
];
