// The stores the dashboard reads: one contract suite for the pods' reports and
// one for the controller's decisions, each run on the memory implementation
// and on the Redis one over a real Redis (two instances, as two pods would
// hold). Time is a fake clock for both; Redis' own TTL runs on real time, so
// the Redis suite also sees a report lapse for real.
import anyTest, { type TestFn } from "ava";
import { pino } from "pino";
import type { LocalRedis } from "../../scripts/local-services.js";
import { fakeClock } from "../../test/helpers/fake-clock.js";
import { freshRedis } from "../../test/helpers/infra.js";
import type { Clock } from "../lib/clock.js";
import { connectRedis, createRedis } from "../lib/redis.js";
import type { PodReport, PodReports } from "./pod-reports.js";
import { MemoryPodReports } from "./pod-reports-memory.js";
import { RedisPodReports } from "./pod-reports-redis.js";
import { DECISIONS_KEPT, type ScalingDecisionRecord, type ScalingDecisions } from "./scaling-decisions.js";
import { MemoryScalingDecisions } from "./scaling-decisions-memory.js";
import { RedisScalingDecisions } from "./scaling-decisions-redis.js";

const test = anyTest as TestFn<{ redis: LocalRedis }>;
const log = pino({ level: "silent" });

test.before(async (t) => {
  t.context.redis = await freshRedis();
});
test.after.always(async (t) => {
  await t.context.redis?.stop();
});

/** One pod's view of the shared stores. */
interface View {
  reports: PodReports;
  decisions: ScalingDecisions;
}
/** Two pods' views of the same stores, on one clock, starting empty. */
interface Stores {
  a: View;
  b: View;
  close(): void;
}

type Make = (t: { context: { redis: LocalRedis } }, clock: Clock) => Promise<Stores>;

const IMPLEMENTATIONS: [string, Make][] = [
  [
    "memory",
    async (_t, clock) => {
      const view = { reports: new MemoryPodReports(clock), decisions: new MemoryScalingDecisions() };
      return { a: view, b: view, close: () => undefined };
    },
  ],
  [
    "redis",
    async (t, clock) => {
      const connections = [1, 2].map((i) => createRedis(t.context.redis.url, `ops-${i}`, log));
      await Promise.all(connections.map((c) => connectRedis(c)));
      await connections[0]?.flushall();
      const [a, b] = connections.map((c) => ({ reports: new RedisPodReports(c, clock), decisions: new RedisScalingDecisions(c) }));
      if (!a || !b) throw new Error("two connections");
      return {
        a,
        b,
        close: () => {
          for (const c of connections) c.disconnect();
        },
      };
    },
  ],
];

const report = (pod: string, at: number, fields: Partial<PodReport> = {}): PodReport => ({
  pod,
  services: ["auth", "chat", "scaler"],
  reportedAt: at,
  streams: 2,
  draining: false,
  postgres: "up",
  redis: "up",
  messagesPerSecond: 1.5,
  sendCommit: { bounds: [0.001, 0.01], counts: [3, 4], total: 5 },
  windowSeconds: 10,
  rssBytes: 100 * 2 ** 20,
  ...fields,
});

const decision = (at: number, fields: Partial<ScalingDecisionRecord> = {}): ScalingDecisionRecord => ({
  at,
  from: 1,
  to: 3,
  desired: 3,
  users: 7,
  action: "up",
  reason: "7 users / 3 per replica → 3",
  dryRun: false,
  ...fields,
});

for (const [impl, make] of IMPLEMENTATIONS) {
  test.serial(`${impl}: every pod's last report is listed, by name, the same from any pod`, async (t) => {
    const { clock } = fakeClock();
    const stores = await make(t, clock);
    t.teardown(() => stores.close());
    await stores.b.reports.publish(report("pod-b", clock.now()), 5000);
    await stores.a.reports.publish(report("pod-a", clock.now(), { streams: 1 }), 5000);
    await stores.a.reports.publish(report("pod-a", clock.now(), { streams: 4, draining: true }), 5000);
    for (const view of [stores.a, stores.b]) {
      const listed = await view.reports.list();
      t.deepEqual(
        listed.map((r) => r.pod),
        ["pod-a", "pod-b"],
      );
      t.deepEqual(listed[0], report("pod-a", clock.now(), { streams: 4, draining: true }));
    }
  });

  test.serial(`${impl}: a report not renewed within its TTL is no longer listed; a removed one at once`, async (t) => {
    const { fake, clock } = fakeClock(Date.now());
    const stores = await make(t, clock);
    t.teardown(() => stores.close());
    await stores.a.reports.publish(report("pod-a", clock.now()), 5000);
    await stores.a.reports.publish(report("pod-b", clock.now()), 5000);
    await stores.a.reports.publish(report("pod-c", clock.now()), 60_000);
    fake.tick(3000);
    await stores.a.reports.publish(report("pod-b", clock.now()), 5000); // renewed
    fake.tick(2500);
    t.deepEqual(
      (await stores.b.reports.list()).map((r) => r.pod),
      ["pod-b", "pod-c"],
    );
    await stores.b.reports.remove("pod-c");
    await stores.b.reports.remove("pod-none");
    t.deepEqual(
      (await stores.a.reports.list()).map((r) => r.pod),
      ["pod-b"],
    );
  });

  test.serial(`${impl}: decisions are listed newest first, at most ${DECISIONS_KEPT}, with the last report kept apart`, async (t) => {
    const { clock } = fakeClock();
    const stores = await make(t, clock);
    t.teardown(() => stores.close());
    t.is(await stores.a.decisions.last(), undefined);
    t.deepEqual(await stores.a.decisions.recent(), []);
    for (let i = 0; i < DECISIONS_KEPT + 5; i++) await stores.a.decisions.record(decision(1000 + i, { from: i, to: i + 1 }));
    const recent = await stores.b.decisions.recent();
    t.is(recent.length, DECISIONS_KEPT);
    t.deepEqual(recent[0], decision(1000 + DECISIONS_KEPT + 4, { from: DECISIONS_KEPT + 4, to: DECISIONS_KEPT + 5 }));
    t.is(recent.at(-1)?.from, 5);
    t.deepEqual(await stores.b.decisions.last(), recent[0]);
  });

  test.serial(`${impl}: a tick that changes nothing is not listed, and a repeated hold or dry run is listed once`, async (t) => {
    const { clock } = fakeClock();
    const stores = await make(t, clock);
    t.teardown(() => stores.close());
    const { decisions } = stores.a;
    const none = (at: number) => decision(at, { from: 3, to: 3, desired: 3, action: "none", reason: "7 users / 3 per replica → 3; no change" });
    const hold = (at: number, users: number) =>
      decision(at, { from: 3, to: 3, desired: 1, users, action: "hold", reason: `${users} users / 3 per replica → 1; holding at 3` });
    await decisions.record(decision(1));
    await decisions.record(none(2));
    await decisions.record(hold(3, 2));
    await decisions.record(hold(4, 1)); // the same hold, users aside
    await decisions.record(none(5));
    await decisions.record(hold(6, 2)); // back after a change: listed again
    await decisions.record(decision(7, { from: 3, to: 5, dryRun: true }));
    await decisions.record(decision(8, { from: 3, to: 5, dryRun: true }));
    t.deepEqual(
      (await stores.b.decisions.recent()).map((d) => `${d.at} ${d.action}${d.dryRun ? " dry" : ""}`),
      ["7 up dry", "6 hold", "3 hold", "1 up"],
    );
    t.is((await stores.b.decisions.last())?.at, 8);
  });
}

test.serial("redis: the report's key lapses by Redis' own TTL too, so a dead pod leaves nothing behind", async (t) => {
  const { clock } = fakeClock(Date.now());
  const connection = createRedis(t.context.redis.url, "ttl", log);
  await connectRedis(connection);
  t.teardown(() => connection.disconnect());
  await connection.flushall();
  await new RedisPodReports(connection, clock).publish(report("pod-a", clock.now()), 200);
  t.is(await connection.exists("parley:ops:pod:pod-a"), 1);
  const deadline = Date.now() + 5000;
  while ((await connection.exists("parley:ops:pod:pod-a")) === 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.is(await connection.exists("parley:ops:pod:pod-a"), 0);
});

test.serial("redis: a lapsed pod's name leaves the set at the next publish, even when nobody lists", async (t) => {
  const { fake, clock } = fakeClock(Date.now());
  const connection = createRedis(t.context.redis.url, "reap", log);
  await connectRedis(connection);
  t.teardown(() => connection.disconnect());
  await connection.flushall();
  const reports = new RedisPodReports(connection, clock);
  await reports.publish(report("pod-gone", clock.now()), 5000);
  fake.tick(6000);
  await reports.publish(report("pod-live", clock.now()), 5000);
  t.deepEqual(await connection.zrange("parley:ops:pods", 0, -1), ["pod-live"]);
});
