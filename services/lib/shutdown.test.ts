// The shutdown routine alone (shutdown.ts): its steps run in order, once
// however often it is called, a failing step is logged and does not stop the
// next, and the whole routine resolves by its deadline. Time is a fake clock
// installed for each test, so the tests run serially.
import { Writable } from "node:stream";
import FakeTimers from "@sinonjs/fake-timers";
import anyTest, { type TestFn } from "ava";
import { pino } from "pino";
import { createShutdown, type ShutdownStep } from "./shutdown.js";

type Clock = ReturnType<typeof FakeTimers.install>;

const test = anyTest.serial as TestFn<{ clock: Clock }>;

test.beforeEach((t) => {
  t.context.clock = FakeTimers.install({ toFake: ["setTimeout", "clearTimeout", "Date"] });
});
test.afterEach.always((t) => {
  t.context.clock.uninstall();
});

/** A logger whose lines (parsed) land in the returned array. */
function recordingLog() {
  const lines: { level: number; msg: string; step?: string; err?: { message: string } }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: "info" }, sink), lines };
}

/** A step that records when it starts and ends, and takes `ms` of the fake clock. */
function timedStep(name: string, ms: number, events: string[], clock: Clock): ShutdownStep {
  return {
    name,
    run: async () => {
      events.push(`${name} start@${clock.now}`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      events.push(`${name} end@${clock.now}`);
    },
  };
}

test("runs every step in order, each after the previous one has finished", async (t) => {
  const { clock } = t.context;
  const events: string[] = [];
  const { log } = recordingLog();
  const shutdown = createShutdown(log, 10_000, [
    timedStep("a", 300, events, clock),
    timedStep("b", 0, events, clock),
    timedStep("c", 100, events, clock),
  ]);
  const done = shutdown();
  await clock.runAllAsync();
  await done;
  t.deepEqual(events, ["a start@0", "a end@300", "b start@300", "b end@300", "c start@300", "c end@400"]);
});

test("is idempotent: a second call, during or after the first, waits for the same run and runs nothing again", async (t) => {
  const { clock } = t.context;
  const events: string[] = [];
  const { log } = recordingLog();
  const shutdown = createShutdown(log, 10_000, [timedStep("a", 500, events, clock), timedStep("b", 500, events, clock)]);
  const first = shutdown();
  let firstDone = false;
  void first.then(() => {
    firstDone = true;
  });
  await clock.tickAsync(200);
  const second = shutdown();
  t.is(second, first);
  let secondDone = false;
  void second.then(() => {
    secondDone = true;
  });
  await clock.tickAsync(700);
  t.false(secondDone, "the second call resolved before the steps had run");
  await clock.tickAsync(100);
  t.true(firstDone && secondDone);
  t.is(shutdown(), first);
  await clock.runAllAsync();
  t.deepEqual(events, ["a start@0", "a end@500", "b start@500", "b end@1000"]);
});

test("a step that throws or rejects is logged with its name, and the next steps still run", async (t) => {
  const { clock } = t.context;
  const events: string[] = [];
  const { log, lines } = recordingLog();
  const shutdown = createShutdown(log, 10_000, [
    {
      name: "throws",
      run: () => {
        throw new Error("boom");
      },
    },
    { name: "rejects", run: () => Promise.reject(new Error("later boom")) },
    timedStep("after", 10, events, clock),
  ]);
  const done = shutdown();
  await clock.runAllAsync();
  await done;
  t.deepEqual(events, ["after start@0", "after end@10"]);
  const failed = lines.filter((l) => l.msg === "shutdown step failed").map((l) => [l.level, l.step, l.err?.message]);
  t.deepEqual(failed, [
    [50, "throws", "boom"],
    [50, "rejects", "later boom"],
  ]);
  t.deepEqual(
    lines.filter((l) => l.msg === "shutdown step done").map((l) => l.step),
    ["after"],
  );
});

test("resolves at the deadline when a step hangs, and says so in the log", async (t) => {
  const { clock } = t.context;
  const events: string[] = [];
  const { log, lines } = recordingLog();
  const hang: ShutdownStep = { name: "hangs", run: () => new Promise(() => undefined) };
  const shutdown = createShutdown(log, 2_000, [timedStep("first", 500, events, clock), hang, timedStep("never", 0, events, clock)]);
  let resolvedAt: number | undefined;
  void shutdown().then(() => {
    resolvedAt = clock.now;
  });
  await clock.tickAsync(1_999);
  t.is(resolvedAt, undefined);
  await clock.tickAsync(1);
  t.is(resolvedAt, 2_000);
  t.deepEqual(events, ["first start@0", "first end@500"]);
  t.true(lines.some((l) => l.level === 50 && l.msg.startsWith("shutdown deadline passed")));
});

// Known gap (reported): the doc says the remaining steps are abandoned past the
// deadline, but a late step that finishes afterwards lets the next steps run,
// after the routine has resolved (and the process may be exiting).
test("past the deadline, the steps not started yet never start", async (t) => {
  const { clock } = t.context;
  const events: string[] = [];
  const { log } = recordingLog();
  const shutdown = createShutdown(log, 1_000, [timedStep("slow", 1_500, events, clock), timedStep("late", 0, events, clock)]);
  const done = shutdown();
  await clock.tickAsync(1_000);
  await done;
  await clock.runAllAsync();
  t.deepEqual(events, ["slow start@0", "slow end@1500"]);
});
