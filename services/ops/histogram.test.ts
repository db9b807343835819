// The dashboard's arithmetic: quantiles from summed bucket increases (what
// Prometheus' histogram_quantile gives), and a pod's rates over its window.
import test from "ava";
import { type Buckets, bucketIncrease, quantile, sumBuckets } from "./histogram.js";
import type { MetricsSample } from "./metrics-sample.js";
import { SampleWindow } from "./sample-window.js";

const BOUNDS = [0.001, 0.005, 0.01, 0.05, 0.1];
/** Cumulative buckets from per-bucket counts (the last entry is above every bound). */
function histogram(perBucket: number[], bounds = BOUNDS): Buckets {
  const counts: number[] = [];
  let running = 0;
  for (let i = 0; i < bounds.length; i++) {
    running += perBucket[i] ?? 0;
    counts.push(running);
  }
  return { bounds, counts, total: running + (perBucket[bounds.length] ?? 0) };
}

test("a quantile is interpolated inside the bucket it falls in, the first bucket starting at 0", (t) => {
  // 100 observations: 50 in (0, 1 ms], 40 in (1, 5 ms], 10 in (5, 10 ms].
  const h = histogram([50, 40, 10]);
  t.is(quantile(0.5, h), 0.001);
  t.is(quantile(0.25, h), 0.0005);
  t.is(Number(quantile(0.7, h)?.toFixed(6)), 0.003); // 20 of the 40 between 1 and 5 ms
  t.is(Number(quantile(0.99, h)?.toFixed(6)), 0.0095);
});

test("no observations: no quantile; past the last finite bound: that bound, as Prometheus answers", (t) => {
  t.is(quantile(0.5, histogram([])), undefined);
  t.is(quantile(0.99, histogram([0, 0, 0, 0, 1, 99])), 0.1);
  t.is(quantile(1.5, histogram([1])), undefined);
});

test("pods are merged bucket by bucket before the quantile: a quiet slow pod does not weigh like a busy fast one", (t) => {
  const busyFast = histogram([990, 10]); // 1000 sends, nearly all under 1 ms
  const quietSlow = histogram([0, 0, 0, 0, 10]); // 10 sends, all 50-100 ms
  const merged = sumBuckets([busyFast, quietSlow]);
  t.is(merged.total, 1010);
  t.deepEqual(merged.counts, [990, 1000, 1000, 1000, 1010]);
  t.true((quantile(0.5, merged) as number) < 0.001);
  // Averaging the pods' own p99s would say ~50 ms; the cluster's p99 is the 1000th of 1010 sends: under 5 ms.
  const averaged = ((quantile(0.99, busyFast) as number) + (quantile(0.99, quietSlow) as number)) / 2;
  t.true(averaged > 0.04);
  t.true((quantile(0.99, merged) as number) <= 0.005);
});

test("pods with different bounds are summed over the union, never counting more than was observed", (t) => {
  const a = histogram([1, 1], [0.01, 0.1]);
  const b = histogram([2], [0.05]);
  const merged = sumBuckets([a, b]);
  t.deepEqual(merged.bounds, [0.01, 0.05, 0.1]);
  t.deepEqual(merged.counts, [1, 3, 4]);
  t.is(merged.total, 4);
});

test("a bucket increase is later minus earlier; a reset counts from zero", (t) => {
  const earlier = histogram([5, 5]);
  const later = histogram([7, 9, 1]);
  t.deepEqual(bucketIncrease(later, earlier), { bounds: BOUNDS, counts: [2, 6, 7, 7, 7], total: 7 });
  t.deepEqual(bucketIncrease(earlier, later), earlier);
  t.deepEqual(bucketIncrease(later, undefined), later);
});

const sample = (at: number, messagesSent: number, perBucket: number[] = []): MetricsSample => ({
  at,
  streams: 0,
  draining: false,
  postgres: "up",
  redis: "not_used",
  messagesSent,
  sendCommit: histogram(perBucket),
  rssBytes: 1,
});

test("a pod's rate is the increase over its window, from the oldest sample still covering it", (t) => {
  const window = new SampleWindow(10_000);
  window.push(sample(0, 0));
  t.deepEqual(window.figures().messagesPerSecond, 0, "one sample: no rate yet");
  for (let s = 1; s <= 20; s++) window.push(sample(s * 1000, s * 5, [s * 5]));
  const figures = window.figures();
  t.is(figures.windowSeconds, 10);
  t.is(figures.messagesPerSecond, 5);
  t.is(figures.sendCommit.total, 50);
  t.is(figures.sendCommit.counts[0], 50);
  // A burst after a quiet spell shows within one sample.
  window.push(sample(21_000, 100 + 100));
  t.is(window.figures().messagesPerSecond, (200 - 55) / 10);
});

test("a counter that went down (a reset) counts from zero", (t) => {
  const window = new SampleWindow(10_000);
  window.push(sample(0, 1000));
  window.push(sample(2000, 10));
  t.is(window.figures().messagesPerSecond, 5);
});
