import { type Clock, systemClock } from "../lib/clock.js";
import type { Logger } from "../lib/logger.js";
import type { ServerMetrics } from "../lib/metrics.js";
import { readMetricsSample, type UsedDependencies } from "./metrics-sample.js";
import type { PodReport, PodReports } from "./pod-reports.js";
import { SampleWindow } from "./sample-window.js";

/** A pod reports every second by default: the dashboard polls every 1–2 s. */
const REPORT_INTERVAL_MS = 1_000;
/** A report lapses 5 s after it was published unless renewed: a killed pod leaves the dashboard within 5 s. */
const REPORT_TTL_MS = 5_000;

export interface PodReporterOptions {
  /** POD_NAME. */
  pod: string;
  /** What this process hosts. */
  services: readonly string[];
  /** The process's registry: every figure is read from it. */
  metrics: ServerMetrics;
  /** Which dependencies the process uses; the others are reported `not_used`. */
  used: UsedDependencies;
  reports: PodReports;
  log: Logger;
  /** Default REPORT_INTERVAL_MS. */
  intervalMs?: number;
  /** Default REPORT_TTL_MS. */
  ttlMs?: number;
  /** Default the system clock (timers that do not hold the process open). */
  clock?: Clock;
}

/**
 * Publishes this process's report (pod-reports.ts) every `intervalMs` on the
 * clock, from samples of its own metrics registry, keeping the short ring
 * of samples its rates come from. Publishing never overlaps; a failure (Redis
 * away) is logged once at warn, then at debug until a publish succeeds again.
 */
export class PodReporter {
  private readonly window = new SampleWindow();
  private readonly log: Logger;
  private readonly clock: Clock;
  private timer: unknown;
  private chain: Promise<void> = Promise.resolve();
  private failures = 0;
  private stopped = false;

  constructor(private readonly options: PodReporterOptions) {
    this.log = options.log.child({ component: "pod-reporter" });
    this.clock = options.clock ?? systemClock;
  }

  /** Publishes at once, then every interval until `stop()`. */
  start(): void {
    const loop = () => {
      if (this.stopped) return;
      void this.reportNow().finally(() => {
        if (!this.stopped) this.timer = this.clock.setTimeout(loop, this.options.intervalMs ?? REPORT_INTERVAL_MS);
      });
    };
    loop();
  }

  /** Reads and publishes one report now (after the previous one): e.g. as the drain starts, so that it shows at once. */
  reportNow(): Promise<void> {
    this.chain = this.chain.then(() => this.publishOnce());
    return this.chain;
  }

  /** Stops the loop, waits for the publish under way, and removes this pod's report: a step of the shutdown. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    await this.chain;
    await this.options.reports.remove(this.options.pod);
  }

  private async publishOnce(): Promise<void> {
    if (this.stopped) return;
    const { pod, services, metrics, used, reports } = this.options;
    try {
      const sample = await readMetricsSample(metrics, used, this.clock.now());
      this.window.push(sample);
      const figures = this.window.figures();
      const report: PodReport = {
        pod,
        services: [...services],
        reportedAt: sample.at,
        streams: sample.streams,
        draining: sample.draining,
        postgres: sample.postgres,
        redis: sample.redis,
        messagesPerSecond: figures.messagesPerSecond,
        sendCommit: figures.sendCommit,
        windowSeconds: figures.windowSeconds,
        rssBytes: sample.rssBytes,
      };
      await reports.publish(report, this.options.ttlMs ?? REPORT_TTL_MS);
      if (this.failures > 0) this.log.info({ after: this.failures }, "pod report published again");
      this.failures = 0;
    } catch (err) {
      this.failures += 1;
      this.log[this.failures === 1 ? "warn" : "debug"]({ err, failures: this.failures }, "could not publish the pod report");
    }
  }
}
