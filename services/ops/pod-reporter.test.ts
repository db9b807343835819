// A pod's reporter on a fake clock, with a real metrics registry and the
// memory store: what it publishes is what the registry says, every second,
// with its rates over the last 10 s; the drain shows at once; a stop removes it.
import test from "ava";
import { pino } from "pino";
import { fakeClock } from "../../test/helpers/fake-clock.js";
import { ServerMetrics } from "../lib/metrics.js";
import { MemoryPodReports } from "./pod-reports-memory.js";
import { PodReporter } from "./pod-reporter.js";

const log = pino({ level: "silent" });

/** Lets the reporter's awaited reads and publish run (they are promises, not timers). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

function setUp() {
  const { fake, clock } = fakeClock();
  const metrics = new ServerMetrics({ defaults: false });
  const reports = new MemoryPodReports(clock);
  const reporter = new PodReporter({
    pod: "pod-1",
    services: ["chat", "scaler"],
    metrics,
    used: { postgres: true, redis: false },
    reports,
    log,
    clock,
  });
  return { fake, metrics, reports, reporter };
}

test("it publishes what its registry says at once, then every second, with the rates of the last 10 s", async (t) => {
  const { fake, metrics, reports, reporter } = setUp();
  metrics.streamsOpen.set({ rpc: "Connect" }, 3);
  metrics.streamsOpen.set({ rpc: "Subscribe" }, 1);
  metrics.dependencyUp.set({ dependency: "postgres" }, 1);
  reporter.start();
  await settle();
  const [first] = await reports.list();
  t.like(first, { pod: "pod-1", services: ["chat", "scaler"], streams: 4, draining: false, postgres: "up", redis: "not_used", messagesPerSecond: 0 });

  for (let second = 1; second <= 12; second++) {
    metrics.messagesSent.inc({ kind: "direct" }, 4);
    metrics.messagesSent.inc({ kind: "group" }, 1);
    metrics.sendCommitSeconds.observe(0.003);
    fake.tick(1000);
    await settle();
  }
  const [later] = await reports.list();
  t.is(later?.reportedAt, fake.now);
  t.is(later?.messagesPerSecond, 5);
  t.is(later?.windowSeconds, 10);
  t.is(later?.sendCommit.total, 10, "the commits of the last 10 s, not all 12");
  await reporter.stop();
});

test("a drain shows at the next report asked for, and a stop removes the report and publishes no more", async (t) => {
  const { fake, metrics, reports, reporter } = setUp();
  reporter.start();
  await settle();
  metrics.startDraining();
  await reporter.reportNow();
  t.true((await reports.list())[0]?.draining);
  await reporter.stop();
  t.deepEqual(await reports.list(), []);
  fake.tick(5000);
  await settle();
  t.deepEqual(await reports.list(), []);
  t.is(fake.countTimers(), 0);
});
