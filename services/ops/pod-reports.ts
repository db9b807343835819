import type { Buckets } from "./histogram.js";
import type { DependencyHealth } from "./metrics-sample.js";

/**
 * What one server process says of itself, every second: its figures from its
 * own metrics registry, with its rates and latency buckets already taken over
 * its last ~10 s (sample-window.ts), so that whoever reads the reports needs
 * no memory of earlier ones. JSON-safe (it is stored as JSON in Redis).
 */
export interface PodReport {
  /** POD_NAME. */
  pod: string;
  /** The services it hosts ("auth", "chat", "scaler"). */
  services: string[];
  /** Epoch ms when it was read. */
  reportedAt: number;
  /** Streams open (parley_streams_open). */
  streams: number;
  /** parley_draining. */
  draining: boolean;
  postgres: DependencyHealth;
  redis: DependencyHealth;
  /** New messages committed per second over `windowSeconds`. */
  messagesPerSecond: number;
  /** Increase of each parley_send_commit_seconds bucket over `windowSeconds`. */
  sendCommit: Buckets;
  /** How long the rates look back, in seconds (0 until the pod has two samples). */
  windowSeconds: number;
  /** Resident memory, in bytes. */
  rssBytes: number;
}

/**
 * Where pods publish their reports and the scaler reads them all: in memory
 * for the embedded mode (one process), in Redis for a cluster. A report lives
 * `ttlMs` after its publication unless renewed, so a pod that dies without
 * removing its own vanishes by itself. Implementations: pod-reports-memory.ts,
 * pod-reports-redis.ts; both pass pod-reports.test.ts.
 */
export interface PodReports {
  /** Stores `report` under its pod's name, replacing the last one, for `ttlMs`. Rejects when the store is unreachable. */
  publish(report: PodReport, ttlMs: number): Promise<void>;
  /** Every live report, sorted by pod name. */
  list(): Promise<PodReport[]>;
  /** Forgets `pod`'s report (its shutdown); no error when there is none. */
  remove(pod: string): Promise<void>;
}
