// Redis presence alone, as Redis holds it: two pods (two instances, two pod
// names, each on a fake clock of its own) on one real Redis, and what the Lua
// scripts leave in the keys of lib/keys.ts after each step. What peers are
// told is in presence.test.ts; this file checks the records the scripts keep.
import FakeTimers from "@sinonjs/fake-timers";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { Redis } from "ioredis";
import { pino } from "pino";
import type { LocalRedis } from "../../scripts/local-services.js";
import { freshRedis } from "../../test/helpers/infra.js";
import { presenceAnnouncedKey, presenceLeavingKey, presencePodKey, presencePodsKey, presenceUsersKey } from "../lib/keys.js";
import { clockOf } from "../../test/helpers/fake-clock.js";
import type { UserRef } from "../db/schema.js";
import type { Presence } from "./presence.js";
import { RedisPresence } from "./presence-redis.js";

type FakeClock = ReturnType<typeof FakeTimers.createClock>;
type Context = { redis: LocalRedis; admin: Redis };
// One Redis, emptied by each test: serial.
const test = anyTest.serial as TestFn<Context>;

const TTL_MS = 3_000;
const HEARTBEAT_MS = 1_000;
const GRACE_MS = 2_000;
const START = 1_700_000_000_000;
const log = pino({ level: "silent" });
const ana: UserRef = { id: 1, username: "ana" };
const ben: UserRef = { id: 2, username: "ben" };

test.before(async (t) => {
  t.context.redis = await freshRedis();
  t.context.admin = new Redis(t.context.redis.url);
});
test.after.always(async (t) => {
  t.context.admin?.disconnect();
  await t.context.redis?.stop();
});

interface Pod {
  name: string;
  presence: Presence;
  clock: FakeClock;
}

/** Pods on an emptied Redis; a pod left behind by the test is a killed process (its record stays). */
async function cluster(t: ExecutionContext<Context>, names: string[]): Promise<Pod[]> {
  await t.context.admin.flushall();
  const pods: Pod[] = [];
  for (const name of names) {
    const clock = FakeTimers.createClock(START);
    const redis = new Redis(t.context.redis.url);
    t.teardown(() => redis.disconnect());
    const presenceClock = clockOf(clock);
    const presence = await RedisPresence.start({
      redis,
      pod: name,
      ttlMs: TTL_MS,
      heartbeatMs: HEARTBEAT_MS,
      graceMs: GRACE_MS,
      clock: presenceClock,
      log,
    });
    presence.onChange(() => undefined);
    pods.push({ name, presence, clock });
  }
  return pods;
}

/** Moves the clocks of `pods` forward together, 100 ms at a time, letting each finish its heartbeat. */
async function advance(pods: Pod[], ms: number): Promise<void> {
  for (let done = 0; done < ms; done += 100) {
    for (const pod of pods) pod.clock.tick(Math.min(100, ms - done));
    for (const pod of pods) await pod.presence.idle();
  }
}

/** Everything presence keeps in Redis, in plain values. */
async function records(admin: Redis, pods: string[]) {
  const [users, announced, leaving, leases] = await Promise.all([
    admin.hgetall(presenceUsersKey),
    admin.smembers(presenceAnnouncedKey),
    admin.zrange(presenceLeavingKey, 0, -1),
    admin.zrange(presencePodsKey, 0, -1),
  ]);
  const perPod = Object.fromEntries(await Promise.all(pods.map(async (pod) => [pod, await admin.hgetall(presencePodKey(pod))] as const)));
  return { users, perPod, announced: announced.sort(), leaving, leases: leases.sort() };
}

test("add and remove keep a count per pod and a cluster-wide count; the last remove starts the grace, which ends in offline", async (t) => {
  const pods = await cluster(t, ["pod-a", "pod-b"]);
  const [a, b] = pods;
  await a.presence.add(ana, "a1");
  await a.presence.add(ana, "a2");
  await b.presence.add(ana, "b1");
  await b.presence.add(ben, "b2");
  t.deepEqual(await records(t.context.admin, ["pod-a", "pod-b"]), {
    users: { "1:ana": "3", "2:ben": "1" },
    perPod: { "pod-a": { "1:ana": "2" }, "pod-b": { "1:ana": "1", "2:ben": "1" } },
    announced: ["1:ana", "2:ben"],
    leaving: [],
    leases: ["pod-a", "pod-b"],
  });
  t.is(await a.presence.onlineCount(), 2);

  await a.presence.remove(ana, "a1");
  await a.presence.remove(ana, "a2");
  t.deepEqual((await records(t.context.admin, ["pod-a"])).users, { "1:ana": "1", "2:ben": "1" });
  t.deepEqual((await records(t.context.admin, ["pod-a"])).leaving, [], "ana still has a stream on pod-b");

  await b.presence.remove(ana, "b1");
  const graceStarted = await records(t.context.admin, ["pod-a", "pod-b"]);
  t.deepEqual(graceStarted.users, { "2:ben": "1" });
  t.deepEqual(graceStarted.perPod, { "pod-a": {}, "pod-b": { "2:ben": "1" } });
  t.deepEqual(graceStarted.leaving, ["1:ana"]);
  t.deepEqual(graceStarted.announced, ["1:ana", "2:ben"], "still announced through the grace");
  t.is(await a.presence.onlineCount(), 1);

  await advance(pods, GRACE_MS + HEARTBEAT_MS);
  const after = await records(t.context.admin, ["pod-a", "pod-b"]);
  t.deepEqual(after.announced, ["2:ben"]);
  t.deepEqual(after.leaving, []);
});

test("a pod that stops heartbeating keeps its lease until the TTL, then another pod's heartbeat reaps its record", async (t) => {
  const pods = await cluster(t, ["pod-a", "pod-b"]);
  const [a, b] = pods;
  await a.presence.add(ana, "a1");
  await a.presence.add(ben, "a2");
  await b.presence.add(ben, "b1");
  const lease = Number(await t.context.admin.zscore(presencePodsKey, "pod-a"));
  t.is(lease, a.clock.now + TTL_MS);

  // pod-a's clock stands still from now on: it is paused or killed.
  await advance([b], TTL_MS - 100);
  t.deepEqual((await records(t.context.admin, ["pod-a"])).leases, ["pod-a", "pod-b"], "reaped before its lease lapsed");
  await advance([b], HEARTBEAT_MS + 100);
  const reaped = await records(t.context.admin, ["pod-a", "pod-b"]);
  t.deepEqual(reaped.leases, ["pod-b"]);
  t.deepEqual(reaped.perPod, { "pod-a": {}, "pod-b": { "2:ben": "1" } });
  t.deepEqual(reaped.users, { "2:ben": "1" });
  t.deepEqual(reaped.announced, ["2:ben"], "ana is offline at once, with no grace");
  t.deepEqual(reaped.leaving, []);
});

test("a reaped pod that comes back repairs its record at its next heartbeat; a stream it closes meanwhile leaves other pods' counts alone", async (t) => {
  const pods = await cluster(t, ["pod-a", "pod-b"]);
  const [a, b] = pods;
  await a.presence.add(ana, "a1");
  await a.presence.add(ben, "a2");
  await b.presence.add(ana, "b1");
  await advance([b], TTL_MS + HEARTBEAT_MS);
  t.deepEqual((await records(t.context.admin, ["pod-a"])).users, { "1:ana": "1" }, "pod-a reaped");

  // pod-a wakes: before its overdue heartbeat runs, one of its streams closes.
  await a.presence.remove(ana, "a1");
  t.deepEqual((await records(t.context.admin, [])).users, { "1:ana": "1" }, "pod-b's stream of ana was uncounted");
  a.clock.tick(b.clock.now - a.clock.now);
  await a.presence.idle();
  const repaired = await records(t.context.admin, ["pod-a", "pod-b"]);
  t.deepEqual(repaired.perPod, { "pod-a": { "2:ben": "1" }, "pod-b": { "1:ana": "1" } });
  t.deepEqual(repaired.users, { "1:ana": "1", "2:ben": "1" });
  t.deepEqual(repaired.leases, ["pod-a", "pod-b"]);
  t.deepEqual(repaired.announced, ["1:ana", "2:ben"]);
});

test("leave (close) removes the pod's lease and record at once; its users with no stream elsewhere start the grace", async (t) => {
  const pods = await cluster(t, ["pod-a", "pod-b"]);
  const [a, b] = pods;
  await a.presence.add(ana, "a1");
  await a.presence.add(ben, "a2");
  await b.presence.add(ben, "b1");
  await a.presence.close();
  const left = await records(t.context.admin, ["pod-a", "pod-b"]);
  t.deepEqual(left.leases, ["pod-b"]);
  t.deepEqual(left.perPod, { "pod-a": {}, "pod-b": { "2:ben": "1" } });
  t.deepEqual(left.users, { "2:ben": "1" });
  t.deepEqual(left.leaving, ["1:ana"]);
  t.is(Number(await t.context.admin.zscore(presenceLeavingKey, "1:ana")), a.clock.now);
  t.deepEqual(left.announced, ["1:ana", "2:ben"], "the grace keeps ana announced");
  await a.presence.close();
  t.deepEqual((await records(t.context.admin, ["pod-a"])).leaving, ["1:ana"], "a second close changes nothing");

  await advance([b], GRACE_MS + HEARTBEAT_MS);
  t.deepEqual((await records(t.context.admin, [])).announced, ["2:ben"]);
});
