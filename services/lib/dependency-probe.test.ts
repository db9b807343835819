import test from "ava";
import { fakeClock } from "../../test/helpers/fake-clock.js";
import { startProbes } from "./dependency-probe.js";

/** Resolves once `results` has `n` entries (the probes settle on real promises, between fake ticks). */
async function until(results: unknown[], n: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (results.length < n) {
    if (Date.now() > deadline) throw new Error(`only ${results.length} of ${n} results`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("probes at once, then every interval on the clock, reports each outcome, and stops when aborted", async (t) => {
  const { fake, clock } = fakeClock();
  const results: string[] = [];
  let redisUp = true;
  const abort = new AbortController();
  startProbes(
    [
      { name: "postgres", check: async () => undefined },
      { name: "redis", check: async () => (redisUp ? "PONG" : Promise.reject(new Error("Connection is closed."))) },
    ],
    { signal: abort.signal, clock, intervalMs: 5_000, onResult: (name, up) => results.push(`${name} ${up ? "up" : "down"}`) },
  );
  await until(results, 2);
  t.deepEqual(results.sort(), ["postgres up", "redis up"]);

  redisUp = false;
  fake.tick(4_999);
  await new Promise((r) => setTimeout(r, 20));
  t.is(results.length, 2, "nothing before the interval");
  fake.tick(1);
  await until(results, 4);
  t.deepEqual(results.slice(2).sort(), ["postgres up", "redis down"]);

  abort.abort();
  fake.tick(10_000);
  await new Promise((r) => setTimeout(r, 20));
  t.is(results.length, 4, "no round after the abort");
  t.is(fake.countTimers(), 0);
});

test("a probe that does not answer within the timeout counts as down", async (t) => {
  const results: boolean[] = [];
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  startProbes([{ name: "postgres", check: () => new Promise(() => undefined) }], {
    signal: abort.signal,
    timeoutMs: 50,
    onResult: (_name, up) => results.push(up),
  });
  await until(results, 1);
  t.deepEqual(results, [false]);
});
