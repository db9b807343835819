import test from "ava";
import { Histogram, Registry } from "prom-client";
import { observeMany, ServerMetrics } from "./metrics.js";

test("observeMany records what as many observe calls would: buckets, sum and count", async (t) => {
  const registry = new Registry();
  const buckets = [0.001, 0.01, 0.1, 1];
  const one = new Histogram({ name: "by_one_seconds", help: "h", buckets, registers: [registry] });
  const many = new Histogram({ name: "at_once_seconds", help: "h", buckets, registers: [registry] });
  // Below, on and between the bounds, and above the last one (only +Inf counts it).
  for (const [value, count] of [
    [0, 3],
    [0.001, 2],
    [0.05, 7],
    [1, 1],
    [12.5, 4],
    [0.0005, 0],
  ] as const) {
    for (let i = 0; i < count; i++) one.observe(value);
    observeMany(many, value, count);
  }
  // Sums are compared to the nanosecond: adding value × count rounds differently from adding value count times.
  const values = async (h: Histogram) =>
    (await h.get()).values.map((v) => ({ labels: v.labels, value: Math.round(v.value * 1e9) / 1e9, suffix: v.metricName?.split("_").pop() }));
  t.deepEqual(await values(many), await values(one));
  t.is((await many.get()).values.find((v) => v.metricName === "at_once_seconds_count")?.value, 17);
});

test("flushers run before every scrape, so numbers counted on the hot path show up", async (t) => {
  const metrics = new ServerMetrics({ defaults: false });
  let pending = 0;
  metrics.beforeCollect(() => {
    metrics.busGaps.inc(pending);
    pending = 0;
  });
  pending = 3;
  t.regex(await metrics.registry.metrics(), /^parley_bus_gaps_total 3$/m);
  pending = 2;
  t.regex(await metrics.registry.metrics(), /^parley_bus_gaps_total 5$/m);
});
