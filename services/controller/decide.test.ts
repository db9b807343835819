import test from "ava";
import { decide, desiredReplicas, startingHistory, type Recommendation, type ScaleSettings } from "./decide.js";

const SETTINGS: ScaleSettings = { minReplicas: 1, maxReplicas: 10, usersPerReplica: 3, scaleDownStabilizationSeconds: 60 };
const T0 = 1_700_000_000_000;
const at = (seconds: number) => T0 + seconds * 1000;

/** Runs ticks in order, threading the history, and returns every decision. */
function run(current: number, ticks: Array<{ s: number; users: number }>, settings = SETTINGS, history: Recommendation[] = []) {
  const out = [];
  for (const tick of ticks) {
    const d = decide({ current, users: tick.users, history, now: at(tick.s), settings });
    out.push(d);
    current = d.replicas;
    history = d.history;
  }
  return out;
}

test("desired is ceil(users / usersPerReplica)", (t) => {
  t.is(desiredReplicas(1, SETTINGS).desired, 1);
  t.is(desiredReplicas(3, SETTINGS).desired, 1);
  t.is(desiredReplicas(4, SETTINGS).desired, 2);
  t.is(desiredReplicas(7, SETTINGS).desired, 3);
  t.is(desiredReplicas(7, SETTINGS).explanation, "7 users / 3 per replica → 3");
  t.is(desiredReplicas(3, SETTINGS).explanation, "3 users / 3 per replica → 1");
});

test("usersPerReplica changes the arithmetic, fractional targets included", (t) => {
  t.is(desiredReplicas(7, { ...SETTINGS, usersPerReplica: 1 }).desired, 7);
  t.is(desiredReplicas(7, { ...SETTINGS, usersPerReplica: 5 }).desired, 2);
  t.is(desiredReplicas(5, { ...SETTINGS, usersPerReplica: 2.5 }).desired, 2);
});

test("0 users gives the minimum, and strange readings count as 0", (t) => {
  t.is(desiredReplicas(0, SETTINGS).desired, 1);
  t.is(desiredReplicas(0, SETTINGS).explanation, "0 users / 3 per replica → 0, clamped to min 1");
  t.is(desiredReplicas(0, { ...SETTINGS, minReplicas: 2 }).desired, 2);
  t.is(desiredReplicas(Number.NaN, SETTINGS).desired, 1);
  t.is(desiredReplicas(-5, SETTINGS).desired, 1);
});

test("the desire is clamped to max", (t) => {
  const d = decide({ current: 1, users: 100, history: [], now: T0, settings: SETTINGS });
  t.is(d.replicas, 10);
  t.is(d.action, "up");
  t.is(d.reason, "100 users / 3 per replica → 34, clamped to max 10");
  t.is(decide({ current: 10, users: 1000, history: [], now: T0, settings: SETTINGS }).action, "none");
});

test("a replica count above max comes down to the bounded desire", (t) => {
  const d = decide({ current: 20, users: 100, history: [], now: T0, settings: SETTINGS });
  t.is(d.replicas, 10);
  t.is(d.action, "down");
});

test("scale-up happens at once, even inside a window", (t) => {
  const [a, b] = run(1, [
    { s: 0, users: 2 },
    { s: 1, users: 7 },
  ]);
  t.is(a.action, "none");
  t.is(b.replicas, 3);
  t.is(b.action, "up");
  t.is(b.reason, "7 users / 3 per replica → 3");
});

test("equal desire writes nothing", (t) => {
  const d = decide({ current: 3, users: 9, history: [], now: T0, settings: SETTINGS });
  t.is(d.replicas, 3);
  t.is(d.action, "none");
  t.is(d.reason, "9 users / 3 per replica → 3; no change");
});

test("scale-down waits out the window, then goes to the desire", (t) => {
  const decisions = run(1, [
    { s: 0, users: 9 }, // up to 3
    { s: 5, users: 1 }, // wants 1: holds
    { s: 30, users: 1 },
    { s: 59, users: 1 }, // 3 was desired 59 s ago: still inside
    { s: 60, users: 1 }, // 60 s since the 3: window passed
  ]);
  t.deepEqual(
    decisions.map((d) => [d.replicas, d.action]),
    [
      [3, "up"],
      [3, "hold"],
      [3, "hold"],
      [3, "hold"],
      [1, "down"],
    ],
  );
  t.is(decisions[1].reason, "1 user / 3 per replica → 1; holding at 3: highest desired in the last 60s");
  t.is(decisions[4].reason, "1 user / 3 per replica → 1");
});

test("scale-down goes only as low as the highest desire in the window", (t) => {
  const decisions = run(1, [
    { s: 0, users: 12 }, // 4
    { s: 30, users: 6 }, // 2: hold at 4
    { s: 61, users: 0 }, // the 4 has left the window; the 2 (at 30 s) has not
    { s: 91, users: 0 }, // the 2 has left too
  ]);
  t.deepEqual(
    decisions.map((d) => d.replicas),
    [4, 4, 2, 1],
  );
  t.is(decisions[2].reason, "0 users / 3 per replica → 0, clamped to min 1; down to 2: highest desired in the last 60s");
});

test("a dip shorter than the window never scales down", (t) => {
  const decisions = run(3, [
    { s: 0, users: 9 },
    { s: 10, users: 0 },
    { s: 20, users: 9 },
    { s: 70, users: 0 },
    { s: 80, users: 9 },
  ]);
  t.true(decisions.every((d) => d.replicas === 3));
});

test("history keeps only desires inside the window, this one included", (t) => {
  const history: Recommendation[] = [
    { at: at(-120), desired: 9 },
    { at: at(-60), desired: 8 },
    { at: at(-59), desired: 2 },
    { at: at(5), desired: 7 }, // from a clock that has since gone back: dropped
  ];
  const d = decide({ current: 2, users: 3, history, now: at(0), settings: SETTINGS });
  t.deepEqual(d.history, [
    { at: at(-59), desired: 2 },
    { at: at(0), desired: 1 },
  ]);
  t.is(d.replicas, 2);
  t.is(history.length, 4, "the input history is not mutated");
});

test("a zero window scales down at once", (t) => {
  const settings = { ...SETTINGS, scaleDownStabilizationSeconds: 0 };
  const decisions = run(
    1,
    [
      { s: 0, users: 9 },
      { s: 1, users: 0 },
    ],
    settings,
  );
  t.deepEqual(
    decisions.map((d) => d.replicas),
    [3, 1],
  );
  t.is(decisions[1].history.length, 1);
});

test("a starting history makes a restarted controller wait a window before scaling down", (t) => {
  const history = startingHistory(5, at(0), SETTINGS);
  t.deepEqual(history, [{ at: at(0), desired: 5 }]);
  const decisions = run(
    5,
    [
      { s: 1, users: 0 },
      { s: 59, users: 0 },
      { s: 60, users: 0 },
    ],
    SETTINGS,
    history,
  );
  t.deepEqual(
    decisions.map((d) => d.replicas),
    [5, 5, 1],
  );
  t.deepEqual(startingHistory(40, at(0), SETTINGS), [{ at: at(0), desired: 10 }], "bounded by max");
  t.deepEqual(startingHistory(0, at(0), SETTINGS), [{ at: at(0), desired: 1 }], "bounded by min");
});
