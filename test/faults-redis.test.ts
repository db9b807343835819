// Redis faults under traffic (design.md, "Live means live", guarantees 3–5,
// "Authentication"): the pods' command connections killed, their subscriber
// connections killed, Redis frozen with SIGSTOP, and Redis restarted. Each test
// has a database, a Redis and two pods of its own, and runs alone, so at most
// two pods of this file run at once. The common checks are in helpers/faults.ts.
import { status, type ServiceError } from "@grpc/grpc-js";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { ParleyApi } from "../services/client/api.js";
import type { LocalRedis } from "../scripts/local-services.js";
import { uniqueName } from "./helpers/clients.js";
import { cleanupsOf, redisCli, runFault, signal, startScene, type Scene } from "./helpers/faults.js";
import { freshDatabase, freshRedis } from "./helpers/infra.js";

const test = anyTest as TestFn<unknown>;

/** A scene on a Redis of the test's own; `redis.current` follows a restart. */
async function redisScene(t: ExecutionContext): Promise<{ scene: Scene; redis: { current: LocalRedis } }> {
  const cleanup = cleanupsOf(t);
  const redis = { current: await freshRedis() };
  cleanup(() => {
    signal(redis.current.pid, "SIGCONT");
    return redis.current.stop();
  });
  const scene = await startScene(t, { databaseUrl: await freshDatabase(), redisUrl: redis.current.url }, cleanup);
  return { scene, redis };
}

/** `call`, again while it answers UNAVAILABLE (retryable), for up to 10 s. */
async function untilAvailable<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if ((err as ServiceError).code !== status.UNAVAILABLE || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * A blip of one kind of connection: at the moment of the kill, ana sends ben
 * a DM and ben joins a group (both through pod 1, while his streams are on
 * pod 2), then ana writes to the group; ben's streams must get both.
 */
async function connectionsKilled(t: ExecutionContext, type: "normal" | "pubsub"): Promise<void> {
  const { scene, redis } = await redisScene(t);
  const [p1] = scene.pods;
  const group = await scene.anaApi.createGroup(uniqueName("grp"));
  const benOnP1 = scene.track(new ParleyApi(p1.address, scene.ben.token));
  let killed = "";
  const result = await runFault(t, scene, {
    inject: async () => {
      killed = await redisCli(redis.current.port, "CLIENT", "KILL", "TYPE", type, "SKIPME", "yes");
    },
    atOnce: async () => {
      await Promise.all([scene.send("right after the kill", "after-kill"), untilAvailable(() => benOnP1.joinGroup(group.name))]);
      await scene.send("to the group once ben is in", "group-1", { group: group.name });
    },
    holdMs: 2_000,
    repair: async () => undefined,
    alsoCheck: () => [group.conversationId],
  });
  t.log(`CLIENT KILL TYPE ${type} killed ${killed} connections; ${result.notes.join("; ")}`);
}

test.serial(
  "Redis command connections killed (CLIENT KILL TYPE normal): a DM and a join at once reach ben's streams live, the revocation holds",
  async (t) => {
    await connectionsKilled(t, "normal");
  },
);

test.serial("Redis subscriber connections killed (CLIENT KILL TYPE pubsub): nothing is missed by an open stream, the revocation holds", async (t) => {
  await connectionsKilled(t, "pubsub");
});

test.serial(
  "Redis frozen (SIGSTOP) for 4 s while ana sends: acks or UNAVAILABLE, live delivery or UNAVAILABLE, revocation within 10 s",
  async (t) => {
    const { scene, redis } = await redisScene(t);
    const result = await runFault(t, scene, {
      inject: async () => signal(redis.current.pid, "SIGSTOP"),
      atOnce: () => scene.send("while Redis is frozen", "frozen-1").catch(() => undefined),
      holdMs: 4_000,
      repair: async () => signal(redis.current.pid, "SIGCONT"),
    });
    t.log(`Redis frozen: ${result.notes.join("; ")}`);
  },
);

test.serial(
  "Redis restarted on the same port under traffic: nothing lost, streams live or UNAVAILABLE, revocation within 10 s, presence repaired",
  async (t) => {
    const { scene, redis } = await redisScene(t);
    const port = redis.current.port;
    const result = await runFault(t, scene, {
      inject: () => redis.current.stop(),
      holdMs: 3_000,
      repair: async () => {
        redis.current = await freshRedis(port);
      },
    });
    t.log(`Redis restarted: ${result.notes.join("; ")}`);
  },
);
