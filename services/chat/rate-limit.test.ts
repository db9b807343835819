// One suite for both rate limiters (memory, and Redis insured by memory), plus
// what only the Redis one promises: pods share a user's budget, and Redis
// down or frozen never refuses nor holds up an action. Serial: the memory
// refill test fakes the clock of the whole process.
import FakeTimers from "@sinonjs/fake-timers";
import anyTest, { type TestFn } from "ava";
import { pino } from "pino";
import { freshRedis } from "../../test/helpers/infra.js";
import type { LocalRedis } from "../../scripts/local-services.js";
import { connectRedis, createRedis } from "../lib/redis.js";
import { memoryRateLimiter, redisRateLimiter, REDIS_LIMIT_TIMEOUT_MS, windowsFor } from "./rate-limit-flexible.js";
import type { RateLimiter, RateRule } from "./rate-limit.js";

const test = anyTest.serial as TestFn<{ redis: LocalRedis }>;
const log = pino({ level: "silent" });
const cleanups: (() => unknown)[] = [];

test.before(async (t) => {
  t.context.redis = await freshRedis();
  cleanups.push(() => t.context.redis.stop());
});
test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A command connection to `url`, as the pods make it, closed after the file. */
async function commands(url: string) {
  const redis = createRedis(url, "test", log);
  await connectRedis(redis);
  cleanups.push(() => redis.disconnect());
  return redis;
}

let names = 0;
/** A limiter name of its own per test, so that tests on one Redis never share counters. */
const fresh = () => `t${++names}-${process.pid}`;

type Make = (rule: RateRule, name: string) => Promise<RateLimiter>;
const takeMany = async (limiter: RateLimiter, key: string, n: number) => {
  const taken: boolean[] = [];
  for (let i = 0; i < n; i++) taken.push(await limiter.take(key));
  return taken;
};

function contract(kind: string, make: (t: { context: { redis: LocalRedis } }) => Make) {
  test(`${kind}: a rested key gets the burst at once, then is refused`, async (t) => {
    const limiter = await make(t)({ perSecond: 1, burst: 3 }, fresh());
    t.deepEqual(await takeMany(limiter, "ana", 5), [true, true, true, false, false]);
  });

  test(`${kind}: each key has a budget of its own`, async (t) => {
    const limiter = await make(t)({ perSecond: 1, burst: 2 }, fresh());
    t.deepEqual(await takeMany(limiter, "ana", 3), [true, true, false]);
    t.deepEqual(await takeMany(limiter, "ben", 3), [true, true, false]);
  });

  test(`${kind}: a refunded point can be taken again, from the main window or from the burst pool`, async (t) => {
    const limiter = await make(t)({ perSecond: 1, burst: 3 }, fresh());
    // The first point comes from the main window: its refund puts it back there.
    t.true(await limiter.take("ana"));
    await limiter.refund("ana");
    // The next three: the main window, then the burst pool; the last refund goes back to the pool.
    t.deepEqual(await takeMany(limiter, "ana", 3), [true, true, true]);
    await limiter.refund("ana");
    t.deepEqual(await takeMany(limiter, "ana", 2), [true, false]);
  });
}

contract("memory", () => async (rule, name) => memoryRateLimiter(name, rule, log));
contract("redis", (t) => async (rule, name) => redisRateLimiter(await commands(t.context.redis.url), name, rule, log));

test("the windows match a token bucket's burst and refill time", (t) => {
  t.deepEqual(windowsFor({ perSecond: 1, burst: 3 }), { main: { points: 1, duration: 1 }, burst: { points: 2, duration: 3 } });
  t.deepEqual(windowsFor({ perSecond: 20, burst: 50 }), { main: { points: 20, duration: 1 }, burst: { points: 30, duration: 3 } });
  t.deepEqual(windowsFor({ perSecond: 20, burst: 10 }), { main: { points: 20, duration: 1 }, burst: undefined });
});

test("memory: perSecond more each second, and the burst again once it has refilled", async (t) => {
  const clock = FakeTimers.install({ toFake: ["Date", "setTimeout", "clearTimeout"] });
  try {
    const limiter = memoryRateLimiter(fresh(), { perSecond: 1, burst: 3 }, log);
    t.deepEqual(await takeMany(limiter, "ana", 4), [true, true, true, false]);
    clock.tick(999);
    t.false(await limiter.take("ana"));
    clock.tick(1);
    t.deepEqual(await takeMany(limiter, "ana", 2), [true, false], "one more after a second");
    clock.tick(1000);
    t.deepEqual(await takeMany(limiter, "ana", 2), [true, false], "one more after two");
    clock.tick(1000);
    t.deepEqual(await takeMany(limiter, "ana", 4), [true, true, true, false], "the whole burst after three (burst / perSecond)");
    clock.tick(60_000);
    t.deepEqual(await takeMany(limiter, "ana", 4), [true, true, true, false], "a long rest refills no more than the burst");
  } finally {
    clock.uninstall();
  }
});

test("redis: two pods share one user's budget", async (t) => {
  const name = fresh();
  const rule = { perSecond: 1, burst: 3 };
  const [first, second] = [
    redisRateLimiter(await commands(t.context.redis.url), name, rule, log),
    redisRateLimiter(await commands(t.context.redis.url), name, rule, log),
  ];
  t.deepEqual(await takeMany(first, "ana", 2), [true, true]);
  t.true(await second.take("ana"));
  // A refund on one pod is seen by the other.
  await second.refund("ana");
  t.deepEqual(await takeMany(first, "ana", 2), [true, false]);
  t.false(await second.take("ana"));
});

test("redis: while Redis is frozen or down, each pod limits on its own and never refuses for it", async (t) => {
  const redis = await freshRedis();
  // stop() is not idempotent (it waits for an exit that already happened): call it once.
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= redis.stop());
  cleanups.push(stop);
  const limiter = redisRateLimiter(await commands(redis.url), fresh(), { perSecond: 1, burst: 3 }, log);
  t.true(await limiter.take("ana"));

  // Redis now counts ana's main window as spent; the pod's own memory windows do not know that.
  process.kill(redis.pid, "SIGSTOP");
  try {
    const started = Date.now();
    t.true(await limiter.take("ana"), "Redis frozen: the pod's own budget allows");
    await limiter.refund("ana");
    const elapsed = Date.now() - started;
    t.true(elapsed < 3 * REDIS_LIMIT_TIMEOUT_MS + 500, `a frozen Redis held a take and a refund for ${elapsed} ms`);
  } finally {
    process.kill(redis.pid, "SIGCONT");
  }

  await stop();
  const started = Date.now();
  t.true(await limiter.take("bob"), "Redis down: allowed");
  t.true(Date.now() - started < 1000, "and at once");
});
