import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Every Prometheus metric a Parley server process exposes, in one registry per
 * process (tests start several in one Node process, so nothing is global).
 * Names follow Prometheus' rules (https://prometheus.io/docs/practices/naming/):
 * `_total` counters, `_seconds` durations, base units. No label ever carries a
 * user, a conversation or a pod-local id: every label below has a small, fixed
 * set of values.
 *
 * The gRPC server metrics use the names of go-grpc-prometheus, which Grafana's
 * gRPC dashboards and most alerting rules expect.
 */
export class ServerMetrics {
  readonly registry: Registry = new FlushingRegistry();

  // --- gRPC server (go-grpc-prometheus names; filled by the server interceptor) ---
  /** RPCs started, by type (unary, client_stream, server_stream, bidi_stream), service and method. */
  readonly grpcStarted = new Counter({
    name: "grpc_server_started_total",
    help: "Total number of RPCs started on the server.",
    labelNames: ["grpc_type", "grpc_service", "grpc_method"] as const,
    registers: [this.registry],
  });
  /** RPCs completed, by status code name (OK, UNAVAILABLE, ...). */
  readonly grpcHandled = new Counter({
    name: "grpc_server_handled_total",
    help: "Total number of RPCs completed on the server, regardless of success or failure.",
    labelNames: ["grpc_type", "grpc_service", "grpc_method", "grpc_code"] as const,
    registers: [this.registry],
  });
  /** Time from an RPC's start to its status, in seconds. Streams are long: their buckets go to an hour. */
  readonly grpcHandlingSeconds = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    labelNames: ["grpc_type", "grpc_service", "grpc_method"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600],
    registers: [this.registry],
  });
  /** Stream messages received from clients. */
  readonly grpcMsgReceived = new Counter({
    name: "grpc_server_msg_received_total",
    help: "Total number of RPC stream messages received on the server.",
    labelNames: ["grpc_type", "grpc_service", "grpc_method"] as const,
    registers: [this.registry],
  });
  /** Stream messages sent to clients (a `batch` frame counts once). */
  readonly grpcMsgSent = new Counter({
    name: "grpc_server_msg_sent_total",
    help: "Total number of gRPC stream messages sent by the server.",
    labelNames: ["grpc_type", "grpc_service", "grpc_method"] as const,
    registers: [this.registry],
  });

  // --- chat ---
  /** Open Connect and Subscribe streams on this pod. */
  readonly streamsOpen = new Gauge({
    name: "parley_streams_open",
    help: "Chat streams (Connect and Subscribe) open on this pod.",
    labelNames: ["rpc"] as const,
    registers: [this.registry],
  });
  /** Streams that ended, by why: client, drain, recycle, revoked, expired, slow_consumer, bus_gap, error (chat/stream-end-reason.ts). */
  readonly streamsEnded = new Counter({
    name: "parley_streams_ended_total",
    help: "Chat streams that ended on this pod, by reason.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  /** Distinct users online in the whole cluster, read from presence at scrape time. */
  readonly onlineUsers = new Gauge({
    name: "parley_online_users",
    help: "Distinct users with at least one live stream anywhere in the cluster (from presence).",
    registers: [this.registry],
    collect: () => this.collectOnlineUsers(),
  });
  /** New messages committed by sends on this pod (retries of a committed send are not counted), by conversation kind. */
  readonly messagesSent = new Counter({
    name: "parley_messages_sent_total",
    help: "Messages committed by sends received on this pod, by conversation kind (direct, group, broadcast).",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  /** Live message frames written to streams on this pod (replays not counted), by conversation kind. */
  readonly messagesDelivered = new Counter({
    name: "parley_messages_delivered_total",
    help: "Live messages written to streams on this pod, by conversation kind.",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  /** From a send's arrival on this pod to its commit in Postgres. */
  readonly sendCommitSeconds = new Histogram({
    name: "parley_send_commit_seconds",
    help: "Time from a send's arrival on its pod to its commit, in seconds.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  /** From a message's commit (`sent_at`) to its first live write on this pod. */
  readonly sendFirstDeliverySeconds = new Histogram({
    name: "parley_send_first_delivery_seconds",
    help: "Time from a message's commit to its first live delivery on this pod, in seconds.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  /** From a message's commit to each of its live writes on this pod: how far fan-out lags. */
  readonly fanoutLagSeconds = new Histogram({
    name: "parley_fanout_lag_seconds",
    help: "Time from a message's commit to each live delivery on this pod, in seconds.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  /** Messages per append statement (the group commit). */
  readonly groupCommitBatchSize = new Histogram({
    name: "parley_group_commit_batch_size",
    help: "Messages committed by one append statement.",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  /** Times this pod started draining its streams (SIGTERM). */
  readonly drains = new Counter({
    name: "parley_drains_total",
    help: "Drains this pod started (shutdown).",
    registers: [this.registry],
  });
  /** 1 while this pod drains: health is NOT_SERVING and streams are told to move. */
  readonly draining = new Gauge({
    name: "parley_draining",
    help: "1 while this process is draining, else 0.",
    registers: [this.registry],
  });
  /** Times the bus connection dropped and the streams that depend on it were ended to resume. */
  readonly busGaps = new Counter({
    name: "parley_bus_gaps_total",
    help: "Bus gaps: the pub/sub connection was lost, so live streams were ended to resume.",
    registers: [this.registry],
  });
  /** Failed Postgres and Redis calls, by dependency (postgres, redis). */
  readonly dependencyErrors = new Counter({
    name: "parley_dependency_errors_total",
    help: "Postgres and Redis calls that failed for the dependency (not for the input).",
    labelNames: ["dependency"] as const,
    registers: [this.registry],
  });
  /** 1 when the last probe of the dependency answered, by dependency. */
  readonly dependencyUp = new Gauge({
    name: "parley_dependency_up",
    help: "1 when the last health probe of the dependency succeeded, else 0.",
    labelNames: ["dependency"] as const,
    registers: [this.registry],
  });
  /** Sends and typing frames refused by the rate limiter. */
  readonly rateLimited = new Counter({
    name: "parley_rate_limited_total",
    help: "Requests refused by the per-user rate limiter, by action (send, typing).",
    labelNames: ["action"] as const,
    registers: [this.registry],
  });

  /** `defaults` adds prom-client's process_* and nodejs_* metrics; default true. */
  constructor(options: { defaults?: boolean } = {}) {
    if (options.defaults !== false) collectDefaultMetrics({ register: this.registry });
    this.draining.set(0);
    // Registered with a source only: a process that reads no presence (an auth pod) must not add a 0 to the cluster's
    // sum, and prom-client shows an unlabelled gauge as 0 from the start.
    this.registry.removeSingleMetric("parley_online_users");
  }

  private onlineUsersSource: { count: () => Promise<number>; timeoutMs: number } | undefined;

  /**
   * Makes `parley_online_users` read `count` (presence) at each scrape,
   * waiting at most `timeoutMs` (default 1000): a read that fails or is late
   * keeps the last value, so a slow Redis never stalls the scrape. For the
   * processes that host chat or the scaler.
   */
  readOnlineUsersFrom(count: () => Promise<number>, timeoutMs = 1000): void {
    if (this.onlineUsersSource === undefined) this.registry.registerMetric(this.onlineUsers);
    this.onlineUsersSource = { count, timeoutMs };
  }

  private async collectOnlineUsers(): Promise<void> {
    const source = this.onlineUsersSource;
    if (source === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), source.timeoutMs);
    });
    try {
      const count = await Promise.race([source.count(), late]);
      if (count !== undefined) this.onlineUsers.set(count);
    } catch {
      // Kept: the last value is a better answer than none while presence is unreachable.
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs `flush` before every collection (a scrape): code on the hot path
   * counts in plain numbers, which costs nothing per frame, and moves them
   * into its counters there.
   */
  beforeCollect(flush: () => void): void {
    (this.registry as FlushingRegistry).flushers.push(flush);
  }

  /** Counts the start of a drain (shutdown) and reports the process as draining until it exits. */
  startDraining(): void {
    this.drains.inc();
    this.draining.set(1);
  }
}

/** A Registry that runs its flushers before every collection (ServerMetrics.beforeCollect). */
class FlushingRegistry extends Registry {
  readonly flushers: (() => void)[] = [];

  override metrics(): Promise<string> {
    for (const flush of this.flushers) flush();
    return super.metrics();
  }

  override getMetricsAsJSON(): ReturnType<Registry["getMetricsAsJSON"]> {
    for (const flush of this.flushers) flush();
    return super.getMetricsAsJSON();
  }
}

/** What prom-client 15's Histogram keeps per label set (lib/histogram.js): buckets not yet cumulative. */
interface HistogramInternals {
  hashMap?: Record<string, { sum: number; count: number; bucketValues: Record<number, number> } | undefined>;
  upperBounds?: readonly number[];
  labelNames?: readonly string[];
}

/**
 * Records `count` observations of the same `value` in an unlabelled
 * histogram, as `count` calls of `observe(value)` would, in one step: a
 * fan-out writes one message to many streams at the same instant. prom-client
 * has no weighted observe, so this adds to its per-series state directly;
 * when that state is not the shape prom-client 15 keeps, it falls back to
 * calling `observe` (metrics.test.ts compares the two).
 */
export function observeMany(histogram: Histogram, value: number, count: number): void {
  const internals = histogram as unknown as HistogramInternals;
  const series = internals.hashMap?.[""];
  const bounds = internals.upperBounds;
  if (series === undefined || bounds === undefined || internals.labelNames?.length !== 0 || !Number.isFinite(value)) {
    for (let i = 0; i < count; i++) histogram.observe(value);
    return;
  }
  series.sum += value * count;
  series.count += count;
  for (const bound of bounds) {
    if (value <= bound) {
      series.bucketValues[bound] += count;
      return;
    }
  }
}
