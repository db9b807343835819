import { bucketIncrease, type Buckets, EMPTY_BUCKETS } from "./histogram.js";
import type { MetricsSample } from "./metrics-sample.js";

/** How far back a pod's rates and latency look by default: 10 s, as the dashboard's "now". */
const DEFAULT_WINDOW_MS = 10_000;

/** A pod's recent activity, from its own samples: what it publishes, so that the aggregator keeps no state. */
export interface WindowFigures {
  /** Seconds between the oldest and the newest sample used (0 with one sample). */
  windowSeconds: number;
  /** Increase of parley_messages_sent_total per second over the window; 0 with one sample. */
  messagesPerSecond: number;
  /** Increase of each parley_send_commit_seconds bucket over the window. */
  sendCommit: Buckets;
}

/**
 * A short ring of one pod's samples, newest last, kept for `windowMs`: rates
 * and bucket increases are the newest sample minus the oldest one still
 * inside the window (Prometheus' `increase()` without extrapolation). A
 * counter that went down (a reset) counts from zero.
 */
export class SampleWindow {
  private readonly samples: MetricsSample[] = [];

  constructor(private readonly windowMs = DEFAULT_WINDOW_MS) {}

  /** Adds `sample` (its `at` must not go backwards) and drops the samples that fell out of the window. */
  push(sample: MetricsSample): void {
    this.samples.push(sample);
    // Keep one sample at or just past the window's start, so the window is covered whole.
    while (this.samples.length > 2 && (this.samples[1] as MetricsSample).at <= sample.at - this.windowMs) this.samples.shift();
  }

  figures(): WindowFigures {
    const newest = this.samples.at(-1);
    const oldest = this.samples[0];
    if (newest === undefined || oldest === undefined || newest === oldest) {
      return { windowSeconds: 0, messagesPerSecond: 0, sendCommit: EMPTY_BUCKETS };
    }
    const seconds = (newest.at - oldest.at) / 1000;
    const sent = newest.messagesSent >= oldest.messagesSent ? newest.messagesSent - oldest.messagesSent : newest.messagesSent;
    return {
      windowSeconds: seconds,
      messagesPerSecond: seconds > 0 ? sent / seconds : 0,
      sendCommit: bucketIncrease(newest.sendCommit, oldest.sendCommit),
    };
  }
}
