/**
 * Worker process: config → logger → Redis → workers → signals. Runs the splitter and one batch
 * worker per configured provider (`smsq worker --provider p` runs one provider's).
 */
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import type { ProviderId } from '../src/message/types.js';
import { startWorkers } from '../src/queue/workers.js';
import { installShutdown } from '../src/service/lifecycle.js';
import { runMain } from '../src/service/run-main.js';

export async function runWorker(only?: readonly ProviderId[]): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const workers = await startWorkers({ config, logger, only });
  installShutdown([{ name: 'workers', close: () => workers.close(), abort: () => workers.abort() }], {
    logger,
  });
}

if (import.meta.url === `file://${process.argv[1]}`) runMain(() => runWorker());
