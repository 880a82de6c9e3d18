import { LATENCY_BUCKETS_S } from './delivery-store.js';

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * `smsq_delivery_total{provider,status}`, `smsq_delivery_latency_seconds{provider}` (accepted →
 * final, delivered and undelivered only: expired and unreported are the horizon, not a report) and
 * `smsq_delivery_push_ignored_total{provider}`, in Prometheus text, from the counters the report
 * scripts keep in Redis (so every process agrees, and a scrape of any one sees them all).
 */
export function deliveryMetricsText(stats: Record<string, string>): string {
  const totals: string[] = [];
  const ignored: string[] = [];
  const histograms = new Map<string, Map<string, string>>();
  for (const [field, value] of Object.entries(stats)) {
    const [provider = '', kind = '', le] = field.split('|');
    const p = escape(provider);
    if (kind === 'push-ignored') ignored.push(`smsq_delivery_push_ignored_total{provider="${p}"} ${value}`);
    else if (kind === 'le' || kind === 'sum' || kind === 'count') {
      const h = histograms.get(p) ?? new Map<string, string>();
      h.set(kind === 'le' ? `le:${le}` : kind, value);
      histograms.set(p, h);
    } else totals.push(`smsq_delivery_total{provider="${p}",status="${escape(kind)}"} ${value}`);
  }
  const lines = [
    '# HELP smsq_delivery_total Recipients that reached a final delivery status.',
    '# TYPE smsq_delivery_total counter',
    ...totals.sort(),
    '# HELP smsq_delivery_latency_seconds Time from a batch accepted to a recipient delivered or undelivered.',
    '# TYPE smsq_delivery_latency_seconds histogram',
  ];
  for (const [provider, h] of histograms) {
    for (const le of LATENCY_BUCKETS_S)
      lines.push(
        `smsq_delivery_latency_seconds_bucket{provider="${provider}",le="${le}"} ${h.get(`le:${le}`) ?? 0}`,
      );
    lines.push(
      `smsq_delivery_latency_seconds_bucket{provider="${provider}",le="+Inf"} ${h.get('count') ?? 0}`,
    );
    lines.push(`smsq_delivery_latency_seconds_sum{provider="${provider}"} ${h.get('sum') ?? 0}`);
    lines.push(`smsq_delivery_latency_seconds_count{provider="${provider}"} ${h.get('count') ?? 0}`);
  }
  lines.push(
    '# HELP smsq_delivery_push_ignored_total Pushed delivery reports not applied (not final, or an id smsq did not send).',
    '# TYPE smsq_delivery_push_ignored_total counter',
    ...ignored.sort(),
  );
  return lines.join('\n') + '\n';
}
