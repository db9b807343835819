import test from "ava";
import { Backoff } from "./backoff.js";

const LOW = () => 0;
const HIGH = () => 0.999;

test("full jitter: the lowest draw waits nothing", (t) => {
  const backoff = new Backoff({ initialMs: 100, maxMs: 5_000 }, LOW);
  t.deepEqual([backoff.next(), backoff.next(), backoff.next()], [0, 0, 0]);
});

test("full jitter: the highest draw stays just under the ceiling, which doubles up to max", (t) => {
  const backoff = new Backoff({ initialMs: 100, maxMs: 1_000 }, HIGH);
  const waits = Array.from({ length: 7 }, () => backoff.next());
  // ceilings 100, 200, 400, 800, then capped at 1000
  t.deepEqual(waits, [99, 199, 399, 799, 999, 999, 999]);
});

test("defaults are 100 ms initial and 5 s max", (t) => {
  const backoff = new Backoff({}, HIGH);
  const waits = Array.from({ length: 10 }, () => backoff.next());
  t.is(waits[0], 99);
  t.is(Math.max(...waits), 4_995);
  t.is(waits[9], 4_995);
});

test("many attempts never overflow past max", (t) => {
  const backoff = new Backoff({ initialMs: 100, maxMs: 5_000 }, HIGH);
  for (let i = 0; i < 100; i++) backoff.next();
  t.is(backoff.next(), 4_995);
});

test("reset() starts again from the initial ceiling", (t) => {
  const backoff = new Backoff({ initialMs: 50, maxMs: 10_000 }, HIGH);
  backoff.next();
  backoff.next();
  t.is(backoff.next(), 199);
  backoff.reset();
  t.is(backoff.next(), 49);
  t.is(backoff.next(), 99);
});

test("with the real random source every wait lies in [0, ceiling)", (t) => {
  const backoff = new Backoff({ initialMs: 10, maxMs: 80 });
  const ceilings = [10, 20, 40, 80, 80];
  for (const ceiling of ceilings) {
    const wait = backoff.next();
    t.true(Number.isInteger(wait) && wait >= 0 && wait < ceiling, `${wait} outside [0, ${ceiling})`);
  }
});
