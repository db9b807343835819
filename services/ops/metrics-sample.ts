// What a pod reports of itself is read from its own Prometheus registry
// (services/lib/metrics.ts), the same numbers `/metrics` serves, so that the
// dashboard and a Prometheus scrape agree by construction.
import type { MetricObjectWithValues, MetricValue, MetricValueWithName } from "prom-client";
import type { ServerMetrics } from "../lib/metrics.js";
import type { Buckets } from "./histogram.js";

/** A dependency as one pod sees it: the last probe answered, failed, not yet made, or the pod runs without it. */
export type DependencyHealth = "up" | "down" | "unknown" | "not_used";

/** One reading of a pod's metrics; counters are cumulative since the process started. */
export interface MetricsSample {
  /** Epoch ms of the reading. */
  at: number;
  /** parley_streams_open, every rpc. */
  streams: number;
  /** parley_draining is 1. */
  draining: boolean;
  postgres: DependencyHealth;
  redis: DependencyHealth;
  /** parley_messages_sent_total, every kind. */
  messagesSent: number;
  /** parley_send_commit_seconds buckets. */
  sendCommit: Buckets;
  /** process_resident_memory_bytes, or Node's own figure when the default metrics are off. */
  rssBytes: number;
}

/** Which dependencies this process uses at all; the others are reported `not_used`. */
export interface UsedDependencies {
  postgres: boolean;
  redis: boolean;
}

const sum = (values: MetricValue<string>[]) => values.reduce((total, v) => total + v.value, 0);

function dependency(values: MetricValue<string>[], name: string, used: boolean): DependencyHealth {
  if (!used) return "not_used";
  const value = values.find((v) => v.labels.dependency === name)?.value;
  if (value === undefined) return "unknown";
  return value >= 1 ? "up" : "down";
}

/** The cumulative buckets of a prom-client histogram without labels (+Inf becomes `total`). */
function buckets(metric: MetricObjectWithValues<MetricValueWithName<string>>): Buckets {
  const bounds: number[] = [];
  const counts: number[] = [];
  let total = 0;
  for (const v of metric.values) {
    if (!v.metricName?.endsWith("_bucket")) continue;
    const le = v.labels.le;
    if (le === "+Inf") total = v.value;
    else {
      bounds.push(Number(le));
      counts.push(v.value);
    }
  }
  return { bounds, counts, total };
}

/** Reads one sample of `metrics` (prom-client's `get()`, as a scrape does). */
export async function readMetricsSample(metrics: ServerMetrics, used: UsedDependencies, now: number): Promise<MetricsSample> {
  const [streams, draining, up, sent, commit] = await Promise.all([
    metrics.streamsOpen.get(),
    metrics.draining.get(),
    metrics.dependencyUp.get(),
    metrics.messagesSent.get(),
    metrics.sendCommitSeconds.get(),
  ]);
  return {
    at: now,
    streams: sum(streams.values),
    draining: sum(draining.values) >= 1,
    postgres: dependency(up.values, "postgres", used.postgres),
    redis: dependency(up.values, "redis", used.redis),
    messagesSent: sum(sent.values),
    sendCommit: buckets(commit),
    // Not prom-client's process_resident_memory_bytes: its collector reads /proc synchronously; this is the same figure.
    rssBytes: process.memoryUsage.rss(),
  };
}
