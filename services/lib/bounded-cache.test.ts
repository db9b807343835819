import test from "ava";
import { fakeClock } from "../../test/helpers/fake-clock.js";
import { boundedCache } from "./bounded-cache.js";

test("a bounded cache keeps at most its entries, dropping the least recently used first", (t) => {
  const cache = boundedCache<string, number>(3);
  for (const [i, key] of ["a", "b", "c"].entries()) cache.set(key, i);
  t.is(cache.get("a"), 0); // now b is the least recently used
  cache.set("d", 3);
  t.is(cache.size, 3);
  t.deepEqual([...cache.keys()].sort(), ["a", "c", "d"]);
  cache.set("d", 4); // a new value for a key takes no more room
  t.is(cache.size, 3);
  t.is(cache.get("d"), 4);
});

test("a bounded cache's entries lapse after their ttl, on the clock it is given", (t) => {
  const { fake, clock } = fakeClock(1_000);
  const cache = boundedCache<string, true>(10, { ttl: 500, perf: { now: () => clock.now() }, ttlResolution: 0 });
  cache.set("a", true);
  fake.tick(500);
  t.true(cache.has("a"), "fresh for its whole ttl");
  fake.tick(1);
  t.false(cache.has("a"));
  cache.set("b", true, { ttl: 100 });
  fake.tick(101);
  t.false(cache.has("b"), "a ttl per entry applies too");
});

test("a bounded cache allocates as it fills, not for its bound when it is made", (t) => {
  // lru-cache's own `max` of 10 million would take about 300 MB here, at once.
  const before = process.memoryUsage().heapUsed;
  const caches = Array.from({ length: 5 }, () => boundedCache<number, true>(10_000_000));
  const grown = process.memoryUsage().heapUsed - before;
  t.true(grown < 8 * 1024 * 1024, `${grown} bytes for ${caches.length} empty caches`);
});
