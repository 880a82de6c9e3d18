import type { Redis } from 'ioredis';
import type { RequestCounts } from '../queue/summary.js';
import type { Campaign, RunSpec } from './definition.js';
import { withScripts } from '../redis.js';

/** The queue whose jobs are campaign runs (one job = one run = one occurrence or one import). */
export const CAMPAIGN_RUNS_QUEUE = 'campaign-runs';
export const CAMPAIGN_RUN_JOB = 'campaign-run';

/** Runs kept in each campaign's index (older ones drop out of `GET …/runs`; their records expire). */
export const RUNS_INDEX_LENGTH = 1_000;

/** Redis keys of campaigns and runs, under the smsq prefix. */
export function campaignKeys(prefix: string) {
  return {
    /** Hash: campaign id → stored campaign (JSON). */
    campaigns: `${prefix}:campaigns`,
    /** Sorted set of a campaign's run ids, scored by creation time. */
    campaignRuns: (campaignId: string) => `${prefix}:campaign-runs:${campaignId}`,
    importRuns: `${prefix}:import-runs`,
    run: (runId: string) => `${prefix}:crun:${runId}`,
    /** Hash: chunk index → its request (and, once it completed, its counts). */
    runChunks: (runId: string) => `${prefix}:crun:${runId}:chunks`,
    /** Hash: recipient (number, text) → the row that first had it; cross-chunk de-duplication. */
    runSeen: (runId: string) => `${prefix}:crun:${runId}:seen`,
    /**
     * Hash: chunk index → the chunk's messages, compressed (staged-chunk.ts), from the moment its
     * rows were read until its send request is enqueued (the field is then removed).
     */
    runStaged: (runId: string) => `${prefix}:crun:${runId}:staged`,
  };
}

export type CampaignKeys = ReturnType<typeof campaignKeys>;

export interface StoredCampaign {
  campaign: Campaign;
  createdAt: string;
  updatedAt: string;
}

export type RunState = 'queued' | 'running' | 'completed' | 'failed';
export type RunKind = 'scheduled' | 'manual' | 'import';

/** Where the rows of a run went, besides the requests it enqueued. Absolute values for the attempt. */
export interface RunProgress {
  /** Data rows read. */
  rows: number;
  /** Rows whose text could not be rendered (a column missing). */
  templateErrors: number;
  /** Rows without a valid number. */
  invalid: number;
  /** Rows with a (number, text) an earlier row of the run already had. */
  duplicates: number;
  /** Rows not enqueued because the next chunk would have exceeded `maxCredits`. */
  skippedForCredits: number;
  /** Chunks (send requests) the rows were cut into: staged, then enqueued. */
  chunks: number;
  /** Credits of those chunks, as estimated when they were cut (what `maxCredits` is checked against). */
  plannedCredits: number;
}

export interface RowError {
  row: number;
  line?: number;
  error: string;
}

export interface RunRecord {
  runId: string;
  campaignId?: string;
  kind: RunKind;
  state: RunState;
  createdAt: string;
  /** The time the run is for: the cron occurrence, or when it was asked for. `expiresAfter` counts from it. */
  occurrence: string;
  /** The definition the run uses, frozen when the run was created so a retry renders the same texts. */
  spec: RunSpec;
  startedAt?: string;
  finishedAt?: string;
  /**
   * When every row had been read and its chunk staged in Redis ("imported"); from then on the run
   * only enqueues its staged chunks as sending capacity frees, and a retry does not read the rows again.
   */
  importedAt?: string;
  /** Set while the run waits for its send window to open. */
  deferredUntil?: string;
  progress: RunProgress;
  /** The first row errors (no numbers, no texts). */
  rowErrors: RowError[];
  error?: string;
  /** Counts and credits summed once every chunk completed. */
  final?: { counts: RequestCounts; credits: { estimated: number; charged: number } };
}

/** One enqueued chunk: its request, and its outcome once the request completed. */
export interface ChunkEntry {
  requestId: string;
  recipients: number;
  counts?: RequestCounts;
  credits?: { estimated: number; charged: number };
}

export function emptyProgress(): RunProgress {
  return {
    rows: 0,
    templateErrors: 0,
    invalid: 0,
    duplicates: 0,
    skippedForCredits: 0,
    chunks: 0,
    plannedCredits: 0,
  };
}

const CREATE_RUN_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(cjson.decode(ARGV[1])))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[4]) + 1))
return 1
`;

/**
 * Marks each (key, row) pair seen; answers 1 for a duplicate (the key was first seen on another
 * row), 0 otherwise. Keyed by row so a re-read of the same rows gives the same answers.
 */
const SEEN_SCRIPT = `
local out = {}
for i = 1, #ARGV - 1, 2 do
  local row = redis.call('HGET', KEYS[1], ARGV[i])
  if not row then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    out[#out + 1] = 0
  elseif row == ARGV[i + 1] then
    out[#out + 1] = 0
  else
    out[#out + 1] = 1
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[#ARGV])
return out
`;

interface CampaignCommands {
  smsqCreateRun(
    runKey: string,
    indexKey: string,
    fields: string,
    score: number,
    runId: string,
    keep: number,
  ): Promise<number>;
  smsqSeen(seenKey: string, ...args: string[]): Promise<number[]>;
}

const SCRIPTS = {
  smsqCreateRun: { keys: 2, lua: CREATE_RUN_SCRIPT },
  smsqSeen: { keys: 1, lua: SEEN_SCRIPT },
};

function commands(redis: Redis): CampaignCommands {
  return withScripts<CampaignCommands>(redis, SCRIPTS);
}

function json<T>(value: string | undefined, fallback: T): T {
  return value === undefined || value === '' ? fallback : (JSON.parse(value) as T);
}

/** Campaign definitions, run records and their chunks, in Redis. */
export class CampaignStore {
  readonly keys: CampaignKeys;

  constructor(
    readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = campaignKeys(prefix);
  }

  async saveCampaign(campaign: Campaign, now = new Date()): Promise<StoredCampaign> {
    const existing = await this.getCampaign(campaign.id);
    const stored: StoredCampaign = {
      campaign,
      createdAt: existing?.createdAt ?? now.toISOString(),
      updatedAt: now.toISOString(),
    };
    await this.redis.hset(this.keys.campaigns, campaign.id, JSON.stringify(stored));
    return stored;
  }

  async getCampaign(id: string): Promise<StoredCampaign | undefined> {
    const raw = await this.redis.hget(this.keys.campaigns, id);
    return raw ? (JSON.parse(raw) as StoredCampaign) : undefined;
  }

  async listCampaigns(): Promise<StoredCampaign[]> {
    const all = await this.redis.hgetall(this.keys.campaigns);
    return Object.values(all)
      .map((raw) => JSON.parse(raw) as StoredCampaign)
      .sort((a, b) => a.campaign.id.localeCompare(b.campaign.id));
  }

  /** Removes the definition; its runs stay readable until they expire. */
  async deleteCampaign(id: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.campaigns, id)) > 0;
  }

  /** Creates a run record unless it exists; true when created. */
  async createRun(record: Omit<RunRecord, 'progress' | 'rowErrors'>): Promise<boolean> {
    const fields: string[] = [];
    const put = (k: string, v: string | undefined) => {
      if (v !== undefined) fields.push(k, v);
    };
    put('runId', record.runId);
    put('campaignId', record.campaignId);
    put('kind', record.kind);
    put('state', record.state);
    put('createdAt', record.createdAt);
    put('occurrence', record.occurrence);
    put('spec', JSON.stringify(record.spec));
    put('progress', JSON.stringify(emptyProgress()));
    const index = record.campaignId ? this.keys.campaignRuns(record.campaignId) : this.keys.importRuns;
    const created = await commands(this.redis).smsqCreateRun(
      this.keys.run(record.runId),
      index,
      JSON.stringify(fields),
      Date.parse(record.createdAt),
      record.runId,
      RUNS_INDEX_LENGTH,
    );
    return created === 1;
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const h = await this.redis.hgetall(this.keys.run(runId));
    if (!h.runId || !h.spec) return undefined;
    return {
      runId: h.runId,
      campaignId: h.campaignId,
      kind: (h.kind as RunKind) ?? 'manual',
      state: (h.state as RunState) ?? 'queued',
      createdAt: h.createdAt ?? '',
      occurrence: h.occurrence ?? h.createdAt ?? '',
      spec: JSON.parse(h.spec) as RunSpec,
      startedAt: h.startedAt,
      finishedAt: h.finishedAt,
      importedAt: h.importedAt,
      deferredUntil: h.deferredUntil,
      progress: { ...emptyProgress(), ...json<Partial<RunProgress>>(h.progress, {}) },
      rowErrors: json(h.rowErrors, []),
      error: h.error,
      final: h.final ? (JSON.parse(h.final) as RunRecord['final']) : undefined,
    };
  }

  /** Run ids of a campaign (or of imports), newest first. */
  async listRunIds(campaignId: string | undefined, limit: number): Promise<string[]> {
    const index = campaignId ? this.keys.campaignRuns(campaignId) : this.keys.importRuns;
    return this.redis.zrevrange(index, 0, limit - 1);
  }

  async updateRun(
    runId: string,
    fields: Partial<
      Pick<RunRecord, 'state' | 'startedAt' | 'finishedAt' | 'error' | 'progress' | 'rowErrors' | 'final'>
    > & {
      deferredUntil?: string | null;
    },
  ): Promise<void> {
    const key = this.keys.run(runId);
    const flat: string[] = [];
    const remove: string[] = [];
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      if (v === null) remove.push(k);
      else flat.push(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
    const multi = this.redis.multi();
    if (flat.length > 0) multi.hset(key, ...flat);
    if (remove.length > 0) multi.hdel(key, ...remove);
    await multi.exec();
  }

  async getChunks(runId: string): Promise<Map<number, ChunkEntry>> {
    const raw = await this.redis.hgetall(this.keys.runChunks(runId));
    const chunks = new Map<number, ChunkEntry>();
    for (const [index, value] of Object.entries(raw))
      chunks.set(Number(index), JSON.parse(value) as ChunkEntry);
    return chunks;
  }

  async setChunk(runId: string, index: number, entry: ChunkEntry): Promise<void> {
    await this.redis.hset(this.keys.runChunks(runId), String(index), JSON.stringify(entry));
  }

  /**
   * Stages one chunk: its compressed messages, with the run's progress up to and including it, in
   * one transaction, so a retry finds either both or neither.
   */
  async stageChunk(
    runId: string,
    index: number,
    payload: Buffer,
    state: Pick<RunRecord, 'progress' | 'rowErrors'>,
    ttlS: number,
  ): Promise<void> {
    const staged = this.keys.runStaged(runId);
    await this.redis
      .multi()
      .hset(staged, String(index), payload)
      .expire(staged, ttlS)
      .hset(
        this.keys.run(runId),
        'progress',
        JSON.stringify(state.progress),
        'rowErrors',
        JSON.stringify(state.rowErrors),
      )
      .exec();
  }

  /** Indexes of the chunks staged and not yet enqueued, in order. */
  async getStagedIndexes(runId: string): Promise<number[]> {
    const fields = await this.redis.hkeys(this.keys.runStaged(runId));
    return fields.map(Number).sort((a, b) => a - b);
  }

  async getStagedChunk(runId: string, index: number): Promise<Buffer | null> {
    return this.redis.hgetBuffer(this.keys.runStaged(runId), String(index));
  }

  /** Records a chunk's request and drops its staged copy, in one transaction. */
  async recordEnqueued(runId: string, index: number, entry: ChunkEntry, ttlS: number): Promise<void> {
    const staged = this.keys.runStaged(runId);
    await this.redis
      .multi()
      .hset(this.keys.runChunks(runId), String(index), JSON.stringify(entry))
      .hdel(staged, String(index))
      .expire(staged, ttlS)
      .exec();
  }

  /**
   * Marks every row read and staged: the final row counts, and the de-duplication hash goes (only
   * reading rows needs it).
   */
  async markImported(
    runId: string,
    state: Pick<RunRecord, 'progress' | 'rowErrors'>,
    importedAt: string,
  ): Promise<void> {
    await this.redis
      .multi()
      .hset(
        this.keys.run(runId),
        'importedAt',
        importedAt,
        'progress',
        JSON.stringify(state.progress),
        'rowErrors',
        JSON.stringify(state.rowErrors),
      )
      .del(this.keys.runSeen(runId))
      .exec();
  }

  /** For each (key, row): true when an earlier row of the run had the key. Same rows, same answers. */
  async markSeen(
    runId: string,
    entries: readonly { key: string; row: number }[],
    ttlS: number,
  ): Promise<boolean[]> {
    if (entries.length === 0) return [];
    const args: string[] = [];
    for (const e of entries) args.push(e.key, String(e.row));
    args.push(String(ttlS));
    const flags = await commands(this.redis).smsqSeen(this.keys.runSeen(runId), ...args);
    return flags.map((f) => f === 1);
  }

  /** Marks a run completed and starts the retention clock on its keys. */
  async completeRun(
    runId: string,
    final: NonNullable<RunRecord['final']>,
    finishedAt: string,
    ttlS: number,
  ): Promise<void> {
    const multi = this.redis.multi();
    multi.hset(
      this.keys.run(runId),
      'state',
      'completed',
      'finishedAt',
      finishedAt,
      'final',
      JSON.stringify(final),
    );
    multi.hdel(this.keys.run(runId), 'deferredUntil', 'error');
    multi.del(this.keys.runSeen(runId), this.keys.runStaged(runId));
    multi.expire(this.keys.run(runId), ttlS);
    multi.expire(this.keys.runChunks(runId), ttlS);
    await multi.exec();
  }

  /** Marks a run failed: chunks still staged are dropped, never sent. */
  async failRun(runId: string, error: string, finishedAt: string, ttlS: number): Promise<void> {
    const multi = this.redis.multi();
    multi.hset(this.keys.run(runId), 'state', 'failed', 'finishedAt', finishedAt, 'error', error);
    multi.hdel(this.keys.run(runId), 'deferredUntil');
    multi.del(this.keys.runSeen(runId), this.keys.runStaged(runId));
    multi.expire(this.keys.run(runId), ttlS);
    multi.expire(this.keys.runChunks(runId), ttlS);
    await multi.exec();
  }
}
