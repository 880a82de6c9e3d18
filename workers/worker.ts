/**
 * Worker process entrypoint (what `smsq worker` runs): config → logger → Redis → workers → signals.
 * Runs the splitter, one batch worker per configured provider, and the campaign-run worker.
 */
import { runMain } from '../src/service/run-main.js';
import { startWorkerService } from '../src/service/start.js';

runMain(async () => {
  await startWorkerService();
});
