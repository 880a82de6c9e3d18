import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { waitCompleted } from '../helpers/http-app.js';
import { onTeardown } from '../helpers/teardown.js';
import { startTestSmsq, type TestSmsq } from '../helpers/test-smsq.js';
import { eventually } from '../helpers/wait.js';

const DASHBOARD = new URL('../../deploy/grafana/smsq.json', import.meta.url);
const ALERTS = new URL('../../deploy/prometheus/alerts.yml', import.meta.url);
const PROMETHEUS_DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));

/** Prometheus's own checker, when installed (Debian: the `prometheus` package). */
const PROMTOOL = (process.env.PATH ?? '')
  .split(delimiter)
  .map((dir) => join(dir, 'promtool'))
  .find((path) => existsSync(path));

/** What one PromQL expression reads: metric names with the labels its selectors match on, and grouping labels. */
interface PromqlRefs {
  metrics: Map<string, Set<string>>;
  groupings: Set<string>;
}

const NOT_METRICS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
]);
const NOT_METRICS_EITHER = new Set(['and', 'or', 'unless', 'inf', 'nan']);
/** Labels Prometheus adds to every sample it scrapes; /metrics itself does not have them. */
const TARGET_LABELS = ['instance', 'job'];

/**
 * Reads the metric names and label names out of a PromQL expression (Grafana variables allowed),
 * enough for the queries written here: strings, selectors, groupings, ranges and numbers are taken
 * out in turn, and every identifier left that is not a function or keyword is a metric.
 */
function readPromql(expr: string): PromqlRefs {
  const metrics = new Map<string, Set<string>>();
  const groupings = new Set<string>();
  const addMetric = (name: string, labels: Iterable<string> = []) => {
    const known = metrics.get(name) ?? new Set<string>();
    for (const label of labels) known.add(label);
    metrics.set(name, known);
  };
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, labels: string) => {
    for (const label of labels.split(',').map((l) => l.trim())) if (label) groupings.add(label);
    return ' ';
  });
  s = s.replace(/([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}/g, (_, name: string | undefined, body: string) => {
    if (!name) throw new Error(`a selector without a metric name in: ${expr}`);
    addMetric(
      name,
      [...body.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1]!),
    );
    return ' ';
  });
  s = s.replace(/\boffset\s+-?\w+/g, ' ');
  s = s.replace(/\[[^\]]*\]/g, ' ').replace(/(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, ' ');
  for (const m of s.matchAll(/[a-zA-Z_:][\w:]*/g)) {
    const name = m[0];
    const isCall = /^\s*\(/.test(s.slice(m.index + name.length));
    if (isCall || NOT_METRICS.has(name) || NOT_METRICS_EITHER.has(name.toLowerCase())) continue;
    addMetric(name);
  }
  return { metrics, groupings };
}

/** A /metrics text: each family's TYPE, and the label names seen on each sample name. */
interface Scrape {
  types: Map<string, string>;
  sampleLabels: Map<string, Set<string>>;
}

function readScrape(text: string): Scrape {
  const types = new Map<string, string>();
  const sampleLabels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? /.exec(line);
    if (!sample) continue;
    const labels = sampleLabels.get(sample[1]!) ?? new Set<string>();
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_]\w*)="/g)) labels.add(m[1]!);
    sampleLabels.set(sample[1]!, labels);
  }
  return { types, sampleLabels };
}

/**
 * What is wrong with one expression against a real scrape: metrics that do not exist (a family
 * with no samples yet counts, except histograms, which only expose `_bucket`, `_sum`, `_count`),
 * selector labels no sample of that metric has, grouping labels no sample of any metric it reads has.
 */
function problemsOf(where: string, expr: string, scrape: Scrape): string[] {
  const problems: string[] = [];
  const refs = readPromql(expr);
  if (refs.metrics.size === 0) problems.push(`${where}: names no metric: ${expr}`);
  const labelsSeen = new Set<string>(TARGET_LABELS);
  let anySamples = false;
  for (const [name, labels] of refs.metrics) {
    const samples = scrape.sampleLabels.get(name);
    const type = scrape.types.get(name);
    if (!samples && (type === undefined || type === 'histogram')) {
      problems.push(`${where}: ${name} is not in /metrics`);
      continue;
    }
    if (!samples) continue; // A labelled counter nothing has incremented yet: its labels cannot be seen.
    anySamples = true;
    for (const label of samples) labelsSeen.add(label);
    for (const label of labels) {
      if (!samples.has(label) && !TARGET_LABELS.includes(label))
        problems.push(`${where}: ${name} has no label ${label}`);
    }
  }
  if (anySamples) {
    for (const label of refs.groupings) {
      if (!labelsSeen.has(label))
        problems.push(`${where}: groups by ${label}, which none of its metrics has`);
    }
  }
  return problems;
}

interface GrafanaPanel {
  id?: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
  panels?: GrafanaPanel[];
}
interface GrafanaDashboard {
  uid: string;
  panels: GrafanaPanel[];
  templating: { list: { name: string; type: string; query: unknown }[] };
}
interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: { severity?: string };
  annotations?: { summary?: string; description?: string };
}

function panelsOf(dashboard: GrafanaDashboard): GrafanaPanel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

describe('readPromql, the reader the file checks rely on', () => {
  it('finds metrics and labels inside functions, selectors, groupings, ranges and Grafana variables', () => {
    const refs = readPromql(
      'histogram_quantile(0.99, sum by (le, provider) (rate(a_seconds_bucket{outcome!="ok", q=~"$x"}[$__rate_interval])))' +
        ' / on () b_total offset 1h unless c > 1e3 and deriv(sum(d)[15m:1m]) > 0',
    );
    expect(Object.fromEntries([...refs.metrics].map(([k, v]) => [k, [...v]]))).toEqual({
      a_seconds_bucket: ['outcome', 'q'],
      b_total: [],
      c: [],
      d: [],
    });
    expect([...refs.groupings]).toEqual(['le', 'provider']);
  });

  it('reports a misspelled metric, a missing label and a grouping label no metric has', () => {
    const scrape = readScrape(
      '# TYPE smsq_recipients_total counter\nsmsq_recipients_total{provider="x",outcome="accepted"} 1\n',
    );
    expect(problemsOf('t', 'rate(smsq_recipient_total[5m])', scrape)).toEqual([
      't: smsq_recipient_total is not in /metrics',
    ]);
    expect(problemsOf('t', 'sum by (queue) (smsq_recipients_total{state="x"})', scrape)).toEqual([
      't: smsq_recipients_total has no label state',
      't: groups by queue, which none of its metrics has',
    ]);
  });
});

describe('deploy/: the Grafana dashboard and the Prometheus alerts name only what smsq exports', () => {
  let service: TestSmsq;
  let scrape: Scrape;
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as GrafanaDashboard;
  const alerts = parseYaml(readFileSync(ALERTS, 'utf8')) as {
    groups: { name: string; rules: AlertRule[] }[];
  };
  const rules = alerts.groups.flatMap((g) => g.rules);

  beforeAll(async () => {
    // `smsq start`'s composition (API, simulator workers, campaign worker) in this process.
    service = await startTestSmsq({ env: { SMSQ_API_KEYS: 'deploy-key', SIMULATOR_DLR_DELAY_MS: '0' }, logLevel: 'fatal' });
    const sent = await service.api<{ id: string }>('/v1/messages', {
      body: { to: '+34600000001', text: 'Hola' },
    });
    await waitCompleted(service, sent.body.id, service.headers);
    // The ledger is read on each scrape; poll until this request's line is counted (past 10 s,
    // the tests below say what the scrape lacks).
    let text = '';
    await eventually(
      async () => {
        text = await (await fetch(`${service.url}/metrics`)).text();
        return (
          /^smsq_recipients_total\{[^}]*\} [1-9]/m.test(text) && /^smsq_delivery_total\{[^}]*\} [1-9]/m.test(text)
        );
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    ).catch(() => undefined);
    scrape = readScrape(text);
  });

  it('the scrape has samples of the counters, the histogram and the BullMQ queue metrics', () => {
    for (const name of [
      'smsq_recipients_total',
      'smsq_credits_charged_total',
      'smsq_provider_request_seconds_bucket',
      'smsq_provider_paused',
      'smsq_redis_up',
      'smsq_enqueue_repaired_total',
      'bullmq_job_count',
    ]) {
      expect(scrape.sampleLabels.has(name), name).toBe(true);
    }
    expect(scrape.types.get('smsq_duplicate_sends_total')).toBe('counter');
  });

  it('every dashboard query and variable reads metrics and labels that exist', () => {
    const problems: string[] = [];
    for (const panel of panelsOf(dashboard).filter((p) => p.type !== 'row')) {
      for (const target of panel.targets ?? []) {
        problems.push(...problemsOf(`panel "${panel.title}" ${target.refId}`, target.expr, scrape));
      }
    }
    for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
      const query = (variable.query as { query: string }).query;
      const call = /^label_values\((\w+), (\w+)\)$/.exec(query);
      expect(call, `variable ${variable.name}: ${query}`).not.toBeNull();
      if (!scrape.sampleLabels.get(call![1]!)?.has(call![2]!))
        problems.push(`variable ${variable.name}: ${query}`);
    }
    expect(problems).toEqual([]);
  });

  it('the dashboard has the panels an operator needs, each with a query, inside the 24-column grid', () => {
    const panels = panelsOf(dashboard).filter((p) => p.type !== 'row');
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n');
    for (const needed of [
      /smsq_recipients_total\[/,
      /smsq_credits_charged_total/,
      /histogram_quantile\(0\.5,.*smsq_provider_request_seconds_bucket/,
      /histogram_quantile\(0\.99,.*smsq_provider_request_seconds_bucket/,
      /smsq_provider_paused/,
      /smsq_duplicate_sends_total/,
      /outcome="unknown"/,
      /bullmq_job_count\{[^}]*waiting/,
    ]) {
      expect(exprs).toMatch(needed);
    }
    for (const panel of panels) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
    }
    const ids = panelsOf(dashboard).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('every alert reads metrics and labels that exist, and says how bad it is and what to do', () => {
    const problems = rules.flatMap((rule) => problemsOf(`alert ${rule.alert}`, rule.expr, scrape));
    expect(problems).toEqual([]);
    for (const rule of rules) {
      expect(['critical', 'warning'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
    }
  });

  it('the alerts cover pauses, duplicates, unknowns, acceptance, backlog, queue age, Redis and repaired enqueues', () => {
    const byName = new Map(rules.map((r) => [r.alert, r]));
    expect([...byName.keys()].sort()).toEqual(
      [
        'SmsqAcceptedRateLow',
        'SmsqDuplicateSends',
        'SmsqEnqueueRepaired',
        'SmsqProviderPaused',
        'SmsqQueueBacklogGrowing',
        'SmsqQueueNotDraining',
        'SmsqQueueOldJobs',
        'SmsqRedisDown',
        'SmsqUnknownRateHigh',
      ].sort(),
    );
    expect(byName.get('SmsqProviderPaused')).toMatchObject({ for: '5m' });
    expect(byName.get('SmsqDuplicateSends')?.expr).toMatch(/smsq_duplicate_sends_total\) > 0$/);
    expect(byName.get('SmsqUnknownRateHigh')?.expr).toMatch(/\[15m\][\s\S]*\) > 0\.01$/);
    expect(byName.get('SmsqEnqueueRepaired')?.expr).toMatch(/smsq_enqueue_repaired_total\[15m\]\)\) > 0$/);
    expect(byName.get('SmsqQueueOldJobs')?.expr).toMatch(/smsq_queue_oldest_waiting_seconds\) > 3600$/);
  });
});

describe.skipIf(!PROMTOOL)('deploy/ checked by promtool', () => {
  const run = (args: string[], cwd = PROMETHEUS_DIR) =>
    execFileSync(PROMTOOL!, args, { cwd, encoding: 'utf8', stdio: 'pipe' });

  it('alerts.yml is valid and its rules pass their unit tests (alerts.test.yml)', () => {
    expect(run(['check', 'rules', 'alerts.yml'])).toContain('SUCCESS: 8 rules found');
    expect(run(['test', 'rules', 'alerts.test.yml'])).toContain('SUCCESS');
  });

  it('every dashboard query is valid PromQL (checked as recording rules, Grafana variables filled in)', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as GrafanaDashboard;
    const exprs = panelsOf(dashboard).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const rules = exprs.map((expr, i) => ({
      record: `smsq_dashboard:query_${i}`,
      expr: expr.replaceAll('$__rate_interval', '1m').replaceAll('$prefix', '.*'),
    }));
    const dir = mkdtempSync(join(tmpdir(), 'smsq-dashboard-'));
    onTeardown('temp dir', () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'queries.yml'), stringifyYaml({ groups: [{ name: 'dashboard', rules }] }));
    expect(run(['check', 'rules', 'queries.yml'], dir)).toContain(`SUCCESS: ${exprs.length} rules found`);
  });
});
