import type { Config } from '../../src/config.js';
import { SmsClient } from '../../src/client.js';
import { startWorkers, type SmsqWorkers, type StartWorkersOptions } from '../../src/queue/workers.js';
import { captureLogger, removePrefix, testConfig } from './smsq.js';

export interface TestPipeline {
  config: Config;
  workers: SmsqWorkers;
  client: SmsClient;
  /** Everything the pipeline logged (JSON lines), to prove what was never logged. */
  logs(): string;
  close(): Promise<void>;
}

/** Workers + client on a unique prefix of the run's Redis, as one process would run them. */
export async function startPipeline(
  env: Record<string, string> = {},
  opts: Pick<StartWorkersOptions, 'holdUntil'> = {},
): Promise<TestPipeline> {
  const config = testConfig(env);
  const { logger, lines } = captureLogger('debug');
  const workers = await startWorkers({ config, logger, ...opts });
  const client = new SmsClient({ redis: config.redisUrl, prefix: config.prefix });
  return {
    config,
    workers,
    client,
    logs: lines,
    async close() {
      await client.close();
      await workers.close(500);
      await removePrefix(config.redisUrl, config.prefix);
    },
  };
}

/** Resolves when `check` returns true, polling Redis-backed state; fails after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
