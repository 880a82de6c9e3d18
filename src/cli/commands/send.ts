import type { Command } from 'commander';
import type { ProviderId } from '../../message/types.js';
import { configuredProviderIds } from '../../providers/index.js';
import { enqueueRequest } from '../../queue/enqueue.js';
import { webhookTargetFromConfig } from '../../webhooks/target.js';
import type { RecordStore } from '../../queue/records.js';
import { cancelRequest, getRequestSummary } from '../../queue/status.js';
import type { RequestSummary } from '../../queue/summary.js';
import { action, collect, parseInteger, parseProvider, withQueueContext, writeLine } from '../shared.js';

/** Polls a request until it is completed (every recipient has an outcome), or throws at the deadline. */
export async function waitForCompletion(
  store: RecordStore,
  id: string,
  timeoutMs: number,
): Promise<RequestSummary> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    const summary = await getRequestSummary(store, id);
    if (summary.state === 'completed') return summary;
    if (Date.now() + delay > deadline) {
      throw new Error(
        `Request ${id} not completed within ${timeoutMs / 1_000} s (it goes on; see smsq status ${id})`,
      );
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(1_000, delay * 2);
  }
}

interface SendOptions {
  to: string[];
  text: string;
  provider?: ProviderId;
  sender?: string;
  idempotencyKey?: string;
  wait?: boolean;
  waitTimeout: number;
}

/** `smsq send`, `smsq status`, `smsq cancel`: one request, straight to Redis. Output: JSON, one document per line. */
export function registerSendCommands(program: Command): void {
  program
    .command('send')
    .description('Enqueue one send request; prints the 202 answer as JSON (and the final result with --wait)')
    .requiredOption('--to <number>', 'recipient, E.164 or national (repeat for more)', collect)
    .requiredOption('--text <text>', 'message text')
    .option('--provider <provider>', 'provider for this request (default: SMSQ_PROVIDER)', parseProvider)
    .option('--sender <sender>', 'sender name or number, as agreed with the provider')
    .option(
      '--idempotency-key <key>',
      'same key + same request within 24 h → the same request, not a second one',
    )
    .option('--wait', 'wait until every recipient has an outcome and print the result')
    .option('--wait-timeout <seconds>', 'give up waiting after this long', parseInteger(1), 600)
    .action(
      action(async (opts: SendOptions) => {
        await withQueueContext(async ({ config, context }) => {
          const { accepted } = await enqueueRequest(
            {
              store: context.store,
              sendQueue: context.sendQueue,
              defaultCountry: config.defaultCountry,
              providers: configuredProviderIds(config),
              webhookTarget: webhookTargetFromConfig(config.webhooks),
            },
            {
              to: opts.to,
              text: opts.text,
              ...(opts.provider ? { provider: opts.provider } : {}),
              ...(opts.sender ? { sender: opts.sender } : {}),
            },
            { idempotencyKey: opts.idempotencyKey, scope: 'cli' },
          );
          await writeLine(JSON.stringify(accepted));
          if (opts.wait) {
            await writeLine(
              JSON.stringify(await waitForCompletion(context.store, accepted.id, opts.waitTimeout * 1_000)),
            );
          }
        });
      }),
    );

  program
    .command('status')
    .description('Print the result of a request as JSON (the shape of GET /v1/messages/:id)')
    .argument('<id>', 'request id, as printed by smsq send')
    .action(
      action(async (id: string) => {
        await withQueueContext(async ({ context }) => {
          await writeLine(JSON.stringify(await getRequestSummary(context.store, id)));
        });
      }),
    );

  program
    .command('cancel')
    .description('Cancel the batches of a request not sent yet (those already at the provider finish)')
    .argument('<id>', 'request id')
    .action(
      action(async (id: string) => {
        await withQueueContext(async ({ context }) => {
          const { cancelledBatches } = await cancelRequest(context.store, id);
          await writeLine(JSON.stringify({ id, cancelledBatches }));
        });
      }),
    );
}
