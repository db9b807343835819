// Presence as peers hear it, on fake clocks (@sinonjs/fake-timers): one
// contract suite run against the memory implementation and the Redis one (on a
// real Redis), plus the cluster cases only Redis has (leases, a paused pod, a
// pod restarted under its name). Each Redis "pod" has a clock of its own, so a
// pod whose clock stands still is a paused or killed process.
import FakeTimers from "@sinonjs/fake-timers";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { Redis } from "ioredis";
import { pino } from "pino";
import { freshRedis } from "../../test/helpers/infra.js";
import type { LocalRedis } from "../../scripts/local-services.js";
import { clockOf, type FakeClock } from "../../test/helpers/fake-clock.js";
import type { UserRef } from "../db/schema.js";
import type { Presence } from "./presence.js";
import { MemoryPresence } from "./presence-memory.js";
import { RedisPresence } from "./presence-redis.js";

const TTL_MS = 3_000;
const HEARTBEAT_MS = 1_000;
const GRACE_MS = 2_000;
const START = 1_700_000_000_000;
const log = pino({ level: "silent" });

const ana: UserRef = { id: 1, username: "ana" };
const ben: UserRef = { id: 2, username: "ben" };

/** What peers were told, by anyone, with the telling pod's clock time. */
interface Told {
  username: string;
  online: boolean;
  at: number;
  by: string;
}

interface Pod {
  name: string;
  presence: Presence;
  clock: FakeClock;
}

/** Pods on one shared state; `told` collects every change any of them claimed. */
class World {
  readonly told: Told[] = [];
  readonly pods: Pod[] = [];
  private readonly cleanups: (() => unknown)[] = [];

  constructor(private readonly make: (name: string, clock: FakeClock) => Promise<{ presence: Presence; close(): unknown }>) {}

  /** A pod on a clock of its own, set to `at` (default: the latest clock of the world); listening unless told not to. */
  async pod(name: string, { listen = true, at }: { listen?: boolean; at?: number } = {}): Promise<Pod> {
    const clock = FakeTimers.createClock(at ?? Math.max(START, ...this.pods.map((p) => p.clock.now)));
    const { presence, close } = await this.make(name, clock);
    this.cleanups.push(close);
    const pod = { name, presence, clock };
    if (listen) this.listen(pod);
    this.pods.push(pod);
    await presence.idle();
    return pod;
  }

  listen(pod: Pod): void {
    pod.presence.onChange((user, online) => {
      this.told.push({ username: user.username, online, at: pod.clock.now, by: pod.name });
    });
  }

  /** Moves the clocks of `pods` (default all) forward together, 100 ms at a time, letting each pod finish its work. */
  async advance(ms: number, pods: Pod[] = this.pods): Promise<void> {
    for (let done = 0; done < ms; done += 100) {
      for (const pod of pods) pod.clock.tick(Math.min(100, ms - done));
      for (const pod of pods) await pod.presence.idle();
    }
  }

  /** Advances until `check` holds, up to `maxMs`; returns the time it took on the first pod's clock. */
  async until(check: () => boolean, maxMs: number, pods: Pod[] = this.pods): Promise<number> {
    const from = pods[0].clock.now;
    while (!check()) {
      if (pods[0].clock.now - from > maxMs) throw new Error(`not within ${maxMs} ms; told ${JSON.stringify(this.told)}`);
      await this.advance(100, pods);
    }
    return pods[0].clock.now - from;
  }

  said(): string[] {
    return this.told.map((t) => `${t.username} ${t.online ? "online" : "offline"}`);
  }

  async close(): Promise<void> {
    for (const cleanup of this.cleanups.reverse()) await cleanup();
  }
}

interface Context {
  redis: LocalRedis;
}
const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  t.context.redis = await freshRedis();
});
test.after.always(async (t) => {
  await t.context.redis?.stop();
});

function memoryWorld(): World {
  return new World(async (_name, clock) => {
    const presence = new MemoryPresence({ graceMs: GRACE_MS, clock: clockOf(clock), log });
    return { presence, close: () => presence.close() };
  });
}

/** Pods with a Redis connection each, on a Redis emptied first. */
async function redisWorld(t: ExecutionContext<Context>): Promise<World> {
  const admin = new Redis(t.context.redis.url);
  await admin.flushall();
  admin.disconnect();
  return new World(async (pod, clock) => {
    const redis = new Redis(t.context.redis.url);
    const presence = await RedisPresence.start({
      redis,
      pod,
      ttlMs: TTL_MS,
      heartbeatMs: HEARTBEAT_MS,
      graceMs: GRACE_MS,
      clock: clockOf(clock),
      log,
    });
    // Stops timers without leaving: a pod abandoned by a test is a killed process, whose record stays.
    return { presence, close: () => redis.disconnect() };
  });
}

const IMPLEMENTATIONS: [string, (t: ExecutionContext<Context>) => Promise<World>][] = [
  ["memory", async () => memoryWorld()],
  ["redis", redisWorld],
];

// ---------------------------------------------------------------------------
// The contract, for every implementation

for (const [impl, makeWorld] of IMPLEMENTATIONS) {
  test.serial(`${impl}: a first stream is announced online once; a second stream, and closing one of two, are not announced`, async (t) => {
    const world = await makeWorld(t);
    t.teardown(() => world.close());
    const { presence } = await world.pod("a");
    await presence.add(ana, "s1");
    t.deepEqual(world.said(), ["ana online"], "announced before add resolved");
    await presence.add(ana, "s2");
    await presence.remove(ana, "s1");
    await world.advance(GRACE_MS + 2 * HEARTBEAT_MS);
    t.deepEqual(world.said(), ["ana online"]);
    t.deepEqual(await presence.onlineUsernames(), ["ana"]);
    t.is(await presence.onlineCount(), 1);
  });

  test.serial(`${impl}: closing the last stream is announced offline once the grace has passed, and then agrees with the online list`, async (t) => {
    const world = await makeWorld(t);
    t.teardown(() => world.close());
    const { presence } = await world.pod("a");
    await presence.add(ana, "s1");
    await presence.add(ben, "s2");
    await presence.remove(ana, "s1");
    await world.advance(GRACE_MS - 100);
    t.deepEqual(world.said(), ["ana online", "ben online"], "nothing announced within the grace");
    const took = await world.until(() => world.told.length === 3, GRACE_MS);
    t.true(took <= 200, `announced ${GRACE_MS - 100 + took} ms after the close`);
    t.deepEqual(world.said(), ["ana online", "ben online", "ana offline"]);
    t.deepEqual(await presence.onlineUsernames(), ["ben"]);
    await world.advance(3 * HEARTBEAT_MS);
    t.is(world.told.length, 3, "announced once");
  });

  test.serial(`${impl}: a user back within the grace is never announced offline`, async (t) => {
    const world = await makeWorld(t);
    t.teardown(() => world.close());
    const { presence } = await world.pod("a");
    await presence.add(ana, "s1");
    await presence.remove(ana, "s1");
    await world.advance(GRACE_MS - 500);
    await presence.add(ana, "s2");
    await world.advance(GRACE_MS + 3 * HEARTBEAT_MS);
    t.deepEqual(world.said(), ["ana online"]);
    t.deepEqual(await presence.onlineUsernames(), ["ana"]);
  });

  test.serial(`${impl}: changes made before anyone listened are announced once someone does`, async (t) => {
    const world = await makeWorld(t);
    t.teardown(() => world.close());
    const pod = await world.pod("a", { listen: false });
    await pod.presence.add(ana, "s1");
    await world.advance(HEARTBEAT_MS);
    t.deepEqual(world.said(), []);
    world.listen(pod);
    await world.advance(100);
    t.deepEqual(world.said(), ["ana online"]);
  });
}

// ---------------------------------------------------------------------------
// The cluster: leases, pauses, restarts (Redis only)

/** Two listening pods; ana on A, ben on B, both announced. */
async function twoPods(t: ExecutionContext<Context>) {
  const world = await redisWorld(t);
  t.teardown(() => world.close());
  const a = await world.pod("pod-a");
  const b = await world.pod("pod-b");
  await a.presence.add(ana, "a1");
  await b.presence.add(ben, "b1");
  t.deepEqual(world.said(), ["ana online", "ben online"]);
  return { world, a, b };
}

test.serial(
  "redis: a pod that stops heartbeating has its users announced offline by another pod within TTL + one heartbeat, with no grace",
  async (t) => {
    const { world, a, b } = await twoPods(t);
    await world.advance(HEARTBEAT_MS); // both heartbeat; then A stops (its clock stands still)
    const lastBeat = a.clock.now;
    const took = await world.until(() => world.told.length === 3, TTL_MS + 2 * HEARTBEAT_MS, [b]);
    const sinceLastBeat = b.clock.now - lastBeat;
    t.deepEqual(world.told.at(-1), { username: "ana", online: false, at: b.clock.now, by: "pod-b" });
    t.true(sinceLastBeat <= TTL_MS + HEARTBEAT_MS, `offline ${sinceLastBeat} ms after the last heartbeat (${took} ms of waiting)`);
    t.deepEqual(await b.presence.onlineUsernames(), ["ben"]);
    t.log(`lease TTL ${TTL_MS} ms, heartbeat ${HEARTBEAT_MS} ms: offline announced ${sinceLastBeat} ms after the dead pod's last heartbeat`);
  },
);

test.serial("redis: a paused pod that comes back is announced online again, by itself, at its first heartbeat", async (t) => {
  const { world, a, b } = await twoPods(t);
  await world.until(() => world.told.length === 3, TTL_MS + 2 * HEARTBEAT_MS, [b]);
  await world.advance(2 * HEARTBEAT_MS, [b]);
  t.deepEqual(await b.presence.onlineUsernames(), ["ben"], "paused: ana is offline, as announced");
  // SIGCONT: A's clock catches up at once, and its overdue heartbeat runs.
  a.clock.tick(b.clock.now - a.clock.now);
  await a.presence.idle();
  t.deepEqual(world.said(), ["ana online", "ben online", "ana offline", "ana online"]);
  t.is(world.told.at(-1)?.by, "pod-a");
  t.deepEqual(await b.presence.onlineUsernames(), ["ana", "ben"], "and the online list agrees");
  // ana's stream on A still counts: closing it later is an ordinary close.
  await a.presence.remove(ana, "a1");
  await world.until(() => world.told.length === 5, GRACE_MS + HEARTBEAT_MS);
  t.deepEqual(world.said().at(-1), "ana offline");
  t.deepEqual(await b.presence.onlineUsernames(), ["ben"]);
});

test.serial("redis: a pod restarted under the same name announces its old record's users offline at once", async (t) => {
  const { world, a, b } = await twoPods(t);
  await a.presence.add(ana, "a2"); // two streams on the old process
  // SIGKILL (the old instance is simply abandoned) and a new process under the same name, at the same moment.
  const restarted = await world.pod("pod-a", { at: a.clock.now });
  world.pods.splice(world.pods.indexOf(a), 1);
  await world.advance(100, [restarted, b]);
  t.deepEqual(world.said(), ["ana online", "ben online", "ana offline"]);
  t.true((world.told.at(-1)?.at ?? Infinity) - a.clock.now <= 100, "at once, not after a TTL or a grace");
  t.deepEqual(await b.presence.onlineUsernames(), ["ben"]);
  // The new process's own streams count as usual.
  await restarted.presence.add(ana, "a3");
  t.deepEqual(world.said().at(-1), "ana online");
  await world.advance(TTL_MS + 2 * HEARTBEAT_MS, [restarted, b]);
  t.deepEqual(await b.presence.onlineUsernames(), ["ana", "ben"]);
  t.is(world.told.length, 4);
});

test.serial("redis: a user drained from one pod to another is not announced at all; the drained pod's leave keeps the grace", async (t) => {
  const { world, a, b } = await twoPods(t);
  const other = { id: 3, username: "cleo" };
  await a.presence.add(other, "a2");
  // SIGTERM on A: its streams close, and it leaves; ana reconnects to B 300 ms later; cleo does not come back.
  await a.presence.remove(ana, "a1");
  await a.presence.close();
  world.pods.splice(world.pods.indexOf(a), 1);
  await world.advance(300, [b]);
  await b.presence.add(ana, "b2");
  await world.advance(GRACE_MS + 2 * HEARTBEAT_MS, [b]);
  t.deepEqual(world.said(), ["ana online", "ben online", "cleo online", "cleo offline"]);
  const cleoOffline = world.told.at(-1) as Told;
  t.is(cleoOffline.by, "pod-b");
  t.true(cleoOffline.at - a.clock.now >= GRACE_MS && cleoOffline.at - a.clock.now <= GRACE_MS + HEARTBEAT_MS, `${cleoOffline.at - a.clock.now} ms`);
  t.deepEqual(await b.presence.onlineUsernames(), ["ana", "ben"]);
});

test.serial("redis: each change is claimed by exactly one of the pods that reconcile it", async (t) => {
  const world = await redisWorld(t);
  t.teardown(() => world.close());
  const pods = [await world.pod("p1"), await world.pod("p2"), await world.pod("p3")];
  const users = Array.from({ length: 20 }, (_, i) => ({ id: 10 + i, username: `user${i}` }));
  await Promise.all(users.map((u, i) => pods[i % 3].presence.add(u, `s${i}`)));
  await Promise.all(users.map((u, i) => pods[i % 3].presence.remove(u, `s${i}`)));
  await world.advance(GRACE_MS + 2 * HEARTBEAT_MS);
  const counts = new Map<string, number>();
  for (const told of world.told) counts.set(`${told.username} ${told.online}`, (counts.get(`${told.username} ${told.online}`) ?? 0) + 1);
  t.is(world.told.length, 40);
  t.true(
    [...counts.values()].every((n) => n === 1),
    JSON.stringify([...counts]),
  );
  t.deepEqual(await pods[0].presence.onlineUsernames(), []);
});
