import type { Config } from '../../src/config.js';
import type { SmsClient } from '../../src/client.js';
import type { SmsqWorkers, StartWorkersOptions } from '../../src/queue/workers.js';
import { startTestSmsq } from './test-smsq.js';

export { eventually } from './wait.js';

/** @deprecated use startTestSmsq */
export interface TestPipeline {
  config: Config;
  workers: SmsqWorkers;
  client: SmsClient;
  /** Everything the pipeline logged (JSON lines), to prove what was never logged. */
  logs(): string;
  close(): Promise<void>;
}

/**
 * Workers + client on a unique prefix of the run's Redis, as one process would run them.
 * @deprecated use startTestSmsq({ api: false, env, workerOptions: { holdUntil } })
 */
export async function startPipeline(
  env: Record<string, string> = {},
  opts: Pick<StartWorkersOptions, 'holdUntil'> = {},
): Promise<TestPipeline> {
  const smsq = await startTestSmsq({ api: false, env, workerOptions: opts });
  return {
    config: smsq.config,
    workers: smsq.workers,
    client: smsq.client,
    logs: smsq.logs,
    close: smsq.close,
  };
}
