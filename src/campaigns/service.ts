import { resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Queue, type JobsOptions } from 'bullmq';
import type { Config } from '../config.js';
import { InputError, NotFoundError } from '../errors.js';
import type { ProviderId } from '../message/types.js';
import { closeSharedQueue, type QueueContext, smsqQueueOptions } from '../queue/context.js';
import { parseCampaign, parseRunSpec, type Campaign, type RunSpec } from './definition.js';
import type { RunJobData, RunJobResult } from './run-processor.js';
import { summarizeRun, type RunSummary } from './run-summary.js';
import { CAMPAIGN_RUN_JOB, CAMPAIGN_RUNS_QUEUE, CampaignStore, type StoredCampaign } from './store.js';

/** A campaign as the API shows it. */
export interface CampaignView extends Campaign {
  createdAt: string;
  updatedAt: string;
  /** The next occurrence, when its scheduler is in place. */
  nextRunAt?: string;
}

export interface CampaignServiceDeps {
  context: QueueContext;
  config: Pick<Config, 'prefix' | 'attempts' | 'backoffMs' | 'recordTtlS' | 'csvDir'>;
  /** Providers the workers can send through; a campaign naming another is refused. */
  providers?: readonly ProviderId[];
}

function newRunId(prefix: string): string {
  return `${prefix}${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}

/**
 * Campaigns and runs for producers (HTTP API, CLI): definitions in Redis, one BullMQ job
 * scheduler per campaign (`upsertJobScheduler` with the campaign's cron and time zone), runs as
 * jobs of the `campaign-runs` queue.
 */
export class CampaignService {
  readonly runs: CampaignStore;
  readonly runQueue: Queue<RunJobData, RunJobResult>;
  private readonly deps: CampaignServiceDeps;

  constructor(deps: CampaignServiceDeps) {
    this.deps = deps;
    this.runs = new CampaignStore(deps.context.redis, deps.config.prefix);
    this.runQueue = new Queue<RunJobData, RunJobResult>(
      CAMPAIGN_RUNS_QUEUE,
      smsqQueueOptions(deps.context.redis, deps.config.prefix),
    );
  }

  /** Options of every run job: retried with backoff; a retry skips chunks already enqueued. */
  private jobOptions(): JobsOptions {
    return {
      attempts: this.deps.config.attempts,
      backoff: { type: 'exponential', delay: this.deps.config.backoffMs, jitter: 0.5 },
      removeOnComplete: { age: 7 * 24 * 3600, count: 1_000 },
      removeOnFail: { age: 30 * 24 * 3600 },
    };
  }

  /** What the API may not ask of the workers: an unconfigured provider, a CSV outside SMSQ_CSV_DIR. */
  private checkSpec(spec: Pick<RunSpec, 'provider' | 'recipients'>): void {
    const { providers, config } = this.deps;
    if (spec.provider && providers && !providers.includes(spec.provider)) {
      throw new InputError('Invalid campaign', [
        { path: 'provider', message: `provider ${spec.provider} is not configured` },
      ]);
    }
    if (config.csvDir && 'csv' in spec.recipients) {
      const path = resolve(spec.recipients.csv);
      if (!path.startsWith(`${config.csvDir}${sep}`)) {
        throw new InputError('Invalid campaign', [
          { path: 'recipients.csv', message: `must be a file in ${config.csvDir} (SMSQ_CSV_DIR)` },
        ]);
      }
    }
  }

  private async view(stored: StoredCampaign): Promise<CampaignView> {
    const scheduler = await this.runQueue.getJobScheduler(stored.campaign.id);
    return {
      ...stored.campaign,
      createdAt: stored.createdAt,
      updatedAt: stored.updatedAt,
      ...(scheduler?.next ? { nextRunAt: new Date(scheduler.next).toISOString() } : {}),
    };
  }

  private async upsertScheduler(campaign: Campaign): Promise<void> {
    await this.runQueue.upsertJobScheduler(
      campaign.id,
      { pattern: campaign.cron, tz: campaign.timezone },
      { name: CAMPAIGN_RUN_JOB, data: { campaignId: campaign.id }, opts: this.jobOptions() },
    );
  }

  /** Validates and stores a campaign (the same id replaces it) and (re)schedules it. */
  async save(input: unknown): Promise<CampaignView> {
    const campaign = parseCampaign(input);
    this.checkSpec(campaign);
    await this.deps.context.ready();
    const stored = await this.runs.saveCampaign(campaign);
    await this.upsertScheduler(campaign);
    return this.view(stored);
  }

  async list(): Promise<CampaignView[]> {
    await this.deps.context.ready();
    return Promise.all((await this.runs.listCampaigns()).map((c) => this.view(c)));
  }

  async get(id: string): Promise<CampaignView> {
    await this.deps.context.ready();
    const stored = await this.runs.getCampaign(id);
    if (!stored) throw new NotFoundError(`No campaign with id ${id}`);
    return this.view(stored);
  }

  /** Removes a campaign and its scheduler; runs in flight finish, past runs stay readable until they expire. */
  async remove(id: string): Promise<void> {
    await this.deps.context.ready();
    await this.runQueue.removeJobScheduler(id);
    if (!(await this.runs.deleteCampaign(id))) throw new NotFoundError(`No campaign with id ${id}`);
  }

  /** Re-upserts every stored campaign's scheduler (at worker start, so schedules survive anything). */
  async restoreSchedulers(): Promise<number> {
    const campaigns = await this.runs.listCampaigns();
    for (const { campaign } of campaigns) await this.upsertScheduler(campaign);
    return campaigns.length;
  }

  /** Starts a run of a campaign now (outside its schedule). */
  async runNow(id: string): Promise<{ runId: string }> {
    await this.deps.context.ready();
    const stored = await this.runs.getCampaign(id);
    if (!stored) throw new NotFoundError(`No campaign with id ${id}`);
    const { id: _id, cron: _cron, ...spec } = stored.campaign;
    return this.startRun(spec, id);
  }

  /** A one-off run of a CSV file (`smsq import`): the same pipeline as a campaign's run. */
  async startImport(input: unknown): Promise<{ runId: string }> {
    const spec = parseRunSpec(input);
    this.checkSpec(spec);
    await this.deps.context.ready();
    return this.startRun(spec);
  }

  private async startRun(spec: RunSpec, campaignId?: string): Promise<{ runId: string }> {
    const runId = campaignId ? `${campaignId}.m${newRunId('')}` : `import.${newRunId('i')}`;
    const now = new Date().toISOString();
    await this.runs.createRun({
      runId,
      ...(campaignId ? { campaignId } : {}),
      kind: campaignId ? 'manual' : 'import',
      state: 'queued',
      createdAt: now,
      occurrence: now,
      spec,
    });
    await this.runQueue.add(
      CAMPAIGN_RUN_JOB,
      { runId, ...(campaignId ? { campaignId } : {}) },
      { ...this.jobOptions(), jobId: runId },
    );
    return { runId };
  }

  /** A run's summary; with `campaignId`, only a run of that campaign (imports: undefined). */
  async getRun(runId: string, opts: { campaignId?: string; requestIds?: boolean } = {}): Promise<RunSummary> {
    await this.deps.context.ready();
    const record = await this.runs.getRun(runId);
    if (!record || (opts.campaignId !== undefined && record.campaignId !== opts.campaignId)) {
      throw new NotFoundError(`No run ${runId}${opts.campaignId ? ` for campaign ${opts.campaignId}` : ''}`);
    }
    return summarizeRun({ store: this.deps.context.store, runs: this.runs }, record, {
      requestIds: opts.requestIds,
    });
  }

  /** A campaign's runs, newest first. */
  async listRuns(campaignId: string, opts: { limit?: number } = {}): Promise<RunSummary[]> {
    await this.deps.context.ready();
    if (
      !(await this.runs.getCampaign(campaignId)) &&
      (await this.runs.listRunIds(campaignId, 1)).length === 0
    ) {
      throw new NotFoundError(`No campaign with id ${campaignId}`);
    }
    const ids = await this.runs.listRunIds(campaignId, opts.limit ?? 50);
    const out: RunSummary[] = [];
    for (const id of ids) {
      const record = await this.runs.getRun(id);
      if (record) out.push(await summarizeRun({ store: this.deps.context.store, runs: this.runs }, record));
    }
    return out;
  }

  /** Resolves when the run is completed or failed; rejects after `timeoutMs`. */
  async waitForRun(runId: string, opts: { timeoutMs?: number; pollMs?: number } = {}): Promise<RunSummary> {
    const timeoutMs = opts.timeoutMs ?? 60 * 60_000;
    const deadline = Date.now() + timeoutMs;
    let delay = 50;
    for (;;) {
      const record = await this.runs.getRun(runId);
      if (!record) throw new NotFoundError(`No run ${runId}`);
      if (record.state === 'completed' || record.state === 'failed') return this.getRun(runId);
      if (Date.now() > deadline) throw new Error(`Run ${runId} not finished within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(opts.pollMs ?? 1_000, delay * 2);
    }
  }

  async close(): Promise<void> {
    await closeSharedQueue(this.runQueue);
  }
}
