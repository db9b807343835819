// The aggregation alone, on the memory stores and a fake clock: the cluster's
// figures are sums of the pods' reports, latency quantiles come from their
// summed bucket increases, a stale or draining pod is not a current replica,
// and the desired count follows the controller's rule.
import test from "ava";
import { fakeClock } from "../../test/helpers/fake-clock.js";
import { ClusterStatusReader } from "./cluster-status.js";
import type { PodReport } from "./pod-reports.js";
import { MemoryPodReports } from "./pod-reports-memory.js";
import { MemoryScalingDecisions } from "./scaling-decisions-memory.js";

const BOUNDS = [0.001, 0.005, 0.01, 0.05, 0.1];

function setUp(users: number) {
  const { fake, clock } = fakeClock();
  const reports = new MemoryPodReports(clock);
  const decisions = new MemoryScalingDecisions();
  const reader = new ClusterStatusReader({ onlineCount: async () => users, reports, decisions, clock });
  const publish = (pod: string, fields: Partial<PodReport>) =>
    reports.publish(
      {
        pod,
        services: ["auth", "chat", "scaler"],
        reportedAt: clock.now(),
        streams: 0,
        draining: false,
        postgres: "up",
        redis: "up",
        messagesPerSecond: 0,
        sendCommit: { bounds: BOUNDS, counts: [0, 0, 0, 0, 0], total: 0 },
        windowSeconds: 10,
        rssBytes: 1,
        ...fields,
      },
      5000,
    );
  return { fake, reader, decisions, publish };
}

test("rates add up over the pods, and latency is one quantile of the summed buckets", async (t) => {
  const { reader, publish } = setUp(7);
  // A busy pod: 990 sends under 1 ms, 10 under 5 ms. A quiet one: 10 sends between 50 and 100 ms.
  await publish("busy", { messagesPerSecond: 100, streams: 6, sendCommit: { bounds: BOUNDS, counts: [990, 1000, 1000, 1000, 1000], total: 1000 } });
  await publish("quiet", { messagesPerSecond: 1, streams: 1, sendCommit: { bounds: BOUNDS, counts: [0, 0, 0, 0, 10], total: 10 } });
  const status = await reader.read();
  t.is(status.onlineUsers, 7);
  t.is(status.messagesPerSecond, 101);
  t.is(status.sendLatency.sends, 1010);
  t.true((status.sendLatency.p50Seconds as number) < 0.001);
  t.true((status.sendLatency.p99Seconds as number) <= 0.005, "not the average of the pods' p99s (about 50 ms)");
  t.deepEqual(
    status.pods.map((p) => [p.pod, p.streams, p.healthy]),
    [
      ["busy", 6, true],
      ["quiet", 1, true],
    ],
  );
});

test("no sends in the window: no latency figure", async (t) => {
  const { reader, publish } = setUp(0);
  await publish("idle", {});
  const { sendLatency } = await reader.read();
  t.deepEqual(sendLatency, { p50Seconds: undefined, p99Seconds: undefined, sends: 0, windowSeconds: 10 });
});

test("current replicas are chat pods with a fresh report that are not draining; desired is the controller's rule", async (t) => {
  const { fake, reader, publish } = setUp(7);
  await publish("old", {});
  fake.tick(3500); // its report is 3.5 s old: stale, though not lapsed yet
  await publish("serving", {});
  await publish("draining", { draining: true });
  await publish("auth-only", { services: ["auth"] });
  const status = await reader.read();
  t.deepEqual(
    status.pods.map((p) => [p.pod, p.healthy]),
    [
      ["auth-only", true],
      ["draining", true],
      ["old", false],
      ["serving", true],
    ],
  );
  t.like(status.replicas, { current: 1, desired: 3, usersPerReplica: 3, controller: undefined });
  t.is((await setUp(0).reader.read()).replicas.desired, 1, "never below 1");
  t.is((await setUp(1000).reader.read()).replicas.desired, 10, "never above 10");
});

test("the controller's figures are its last report; its listed decisions come newest first", async (t) => {
  const { reader, decisions } = setUp(7);
  await decisions.record({ at: 1, from: 1, to: 3, desired: 3, users: 7, action: "up", reason: "7 users / 3 per replica → 3", dryRun: false });
  await decisions.record({ at: 2, from: 3, to: 3, desired: 3, users: 7, action: "none", reason: "no change", dryRun: false });
  const status = await reader.read();
  t.deepEqual(status.replicas.controller, { desired: 3, current: 3, replicas: 3, reportedAt: 2, dryRun: false });
  t.deepEqual(
    status.decisions.map((d) => d.at),
    [1],
  );
});
