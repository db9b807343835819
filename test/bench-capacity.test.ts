// The capacity search alone, on made-up steps: a ramp up to the first rate
// that misses the SLO, then bisection between the last pass and that miss.
import test from "ava";
import { findCapacity, sloMiss } from "../scripts/bench/capacity.js";
import type { StepResult } from "../scripts/bench/session.js";

/** A step that meets the SLO up to `limit` msg/s; above it, p99 is 200 ms. */
const fakeStep = (limit: number) => async (rate: number) =>
  ({
    rate,
    deliveriesPerSec: rate * 10,
    sloDeliveredFraction: 1,
    endedSlow: 0,
    invalid: false,
    counts: { latency: { p99: rate <= limit ? 10 : 200 } },
  }) as unknown as StepResult;

test("the ramp stops at the first miss and bisection narrows towards the limit", async (t) => {
  const tried: number[] = [];
  const result = await findCapacity(
    async (rate) => {
      tried.push(rate);
      return fakeStep(300)(rate);
    },
    { ramp: [100, 200, 400, 800], bisections: 2 },
  );
  t.deepEqual(tried, [100, 200, 400, 283, 336]);
  t.is(result.capacity, 283);
  t.is(result.deliveriesPerSec, 2830);
  t.false(result.lowerBound);
  t.is(result.points.filter((p) => p.saturated).length, 2);
});

test("a search that never misses gives a lower bound, and one that always misses gives 0", async (t) => {
  const high = await findCapacity(fakeStep(10_000), { ramp: [100, 200], bisections: 3 });
  t.is(high.capacity, 200);
  t.true(high.lowerBound);
  const low = await findCapacity(fakeStep(10), { ramp: [100, 200], bisections: 1 });
  t.is(low.points.map((p) => p.rate).join(), "100,50");
  t.is(low.capacity, 0);
});

test("a stream ended as slow misses the SLO even when latency and delivery are fine", async (t) => {
  const step = { ...(await fakeStep(1000)(100)), endedSlow: 1 } as StepResult;
  t.is(sloMiss(step), "1 streams ended as slow");
});
