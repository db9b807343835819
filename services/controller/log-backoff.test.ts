import test from "ava";
import { LogBackoff } from "./log-backoff.js";

/** A clock that moves only when the test says so, and errors shaped like the controller's. */
function setup(maxQuietMs?: number) {
  const clock = { t: 1_000_000, now: () => clock.t };
  const backoff = new LogBackoff(clock, maxQuietMs);
  const unavailable = () =>
    Object.assign(new Error(`GetMetrics failed: UNAVAILABLE after ${Math.random()} s`), { name: "ScalerReadError", code: 14 });
  return { clock, backoff, unavailable };
}

test("a failure every tick is logged on the 1st, 3rd, 7th and 15th time, with how many in a row", (t) => {
  const { clock, backoff, unavailable } = setup();
  const lines: Array<[number, unknown]> = [];
  for (let n = 1; n <= 20; n++) {
    clock.t += 1000;
    const line = backoff.failed(unavailable());
    if (line) lines.push([n, line]);
  }
  t.deepEqual(lines, [
    [1, {}],
    [3, { repeated: 3 }],
    [7, { repeated: 7 }],
    [15, { repeated: 15 }],
  ]);
});

test("however the count grows, a repeating failure is logged at least once a minute", (t) => {
  const { clock, backoff, unavailable } = setup();
  const loggedAt: number[] = [];
  const start = clock.t;
  for (let n = 1; n <= 60; n++) {
    if (backoff.failed(unavailable())) loggedAt.push((clock.t - start) / 1000);
    clock.t += 5000; // the default 5 s sync interval
  }
  // 1st, 3rd, 7th, 15th at 0, 10, 30, 70 s; then the minute cap: 130, 190, … (the 31st, at 150 s, is due by count too)
  t.deepEqual(loggedAt.slice(0, 4), [0, 10, 30, 70]);
  const gaps = loggedAt.slice(1).map((at, i) => at - loggedAt[i]);
  t.true(
    gaps.every((gap) => gap <= 60),
    `gaps ${gaps.join(", ")}`,
  );
  t.true(loggedAt.length <= 10, `${loggedAt.length} lines for 60 failures`);
});

test("a different failure is logged at once and restarts the doubling; the count in a row goes on", (t) => {
  const { backoff, unavailable } = setup();
  t.deepEqual(backoff.failed(unavailable()), {});
  t.is(backoff.failed(unavailable()), undefined);
  const refused = Object.assign(new Error("read the scale: HTTP 503"), { name: "KubernetesCallError", status: 503 });
  t.deepEqual(backoff.failed(refused), { repeated: 3 });
  t.is(backoff.failed(refused), undefined);
  t.deepEqual(backoff.failed(refused), { repeated: 5 });
});

test("errors without a status are the same when only their numbers differ", (t) => {
  const { backoff } = setup();
  t.deepEqual(backoff.failed(new Error("connect ECONNREFUSED 127.0.0.1:40123")), {});
  t.is(backoff.failed(new Error("connect ECONNREFUSED 127.0.0.1:40124")), undefined);
  t.deepEqual(backoff.failed(new Error("getaddrinfo ENOTFOUND kubernetes.default")), { repeated: 3 });
  t.deepEqual(backoff.failed("not an Error"), { repeated: 4 }, "a thrown non-Error is a kind of its own");
});

test("the recovery is reported once, with the failures in a row and how long they lasted", (t) => {
  const { clock, backoff, unavailable } = setup();
  t.is(backoff.succeeded(), undefined, "nothing to report without a failure");
  backoff.failed(unavailable());
  clock.t += 12_340;
  backoff.failed(unavailable());
  t.deepEqual(backoff.succeeded(), { failures: 2, downSeconds: 12.3 });
  t.is(backoff.succeeded(), undefined);
  t.deepEqual(backoff.failed(unavailable()), {}, "a new outage starts over");
});

test("a smaller quiet limit is honoured", (t) => {
  const { clock, backoff, unavailable } = setup(2000);
  const logged = [1, 2, 3, 4, 5, 6].map(() => {
    clock.t += 1000;
    return backoff.failed(unavailable()) !== undefined;
  });
  t.deepEqual(logged, [true, false, true, false, true, false]);
});
