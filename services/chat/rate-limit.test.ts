import test from "ava";
import { RateLimiter } from "./rate-limit.js";

/** A limiter on a clock the test moves by hand. */
function setup(perSecond: number, burst: number) {
  let now = 1_000_000;
  const limiter = new RateLimiter(perSecond, burst, () => now);
  return { limiter, tick: (ms: number) => (now += ms) };
}

const takeMany = (limiter: RateLimiter, key: string, n: number) => Array.from({ length: n }, () => limiter.take(key));

test("allows a burst, then refuses", (t) => {
  const { limiter } = setup(2, 3);
  t.deepEqual(takeMany(limiter, "alice", 5), [true, true, true, false, false]);
});

test("refills at perSecond with the clock", (t) => {
  const { limiter, tick } = setup(2, 3);
  takeMany(limiter, "alice", 3);
  tick(250); // half a token
  t.false(limiter.take("alice"));
  tick(250); // a whole token, counting the refused attempt's time too
  t.true(limiter.take("alice"));
  t.false(limiter.take("alice"));
  tick(1_000);
  t.deepEqual(takeMany(limiter, "alice", 3), [true, true, false]);
});

test("a long pause refills no more than the burst", (t) => {
  const { limiter, tick } = setup(10, 3);
  takeMany(limiter, "alice", 3);
  tick(60_000);
  t.deepEqual(takeMany(limiter, "alice", 4), [true, true, true, false]);
});

test("each key has its own bucket", (t) => {
  const { limiter } = setup(1, 2);
  t.deepEqual(takeMany(limiter, "alice", 3), [true, true, false]);
  t.deepEqual(takeMany(limiter, "bob", 3), [true, true, false]);
});
