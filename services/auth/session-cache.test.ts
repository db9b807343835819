// The session cache alone (session-cache.ts): one contract suite run on the
// memory cache, with a fake Date, and on the Redis cache over a real Redis,
// where expiry is Redis's own clock and so waits for real (a few hundred ms).
// Then what only Redis has: the trust bound, revocations heard by other pods,
// and a Redis that is down. Tests run serially: the memory world fakes Date.
import { randomBytes } from "node:crypto";
import FakeTimers from "@sinonjs/fake-timers";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { Redis } from "ioredis";
import { pino } from "pino";
import type { LocalRedis } from "../../scripts/local-services.js";
import { freshRedis } from "../../test/helpers/infra.js";
import { sessionKey } from "../lib/keys.js";
import { connectRedis, createRedis } from "../lib/redis.js";
import type { CachedSession, SessionCache } from "./session-cache.js";
import { MemorySessionCache } from "./session-cache-memory.js";
import { RedisSessionCache } from "./session-cache-redis.js";

type Context = { redis: LocalRedis };
const test = anyTest.serial as TestFn<Context>;
const log = pino({ level: "silent" });

test.before(async (t) => {
  t.context.redis = await freshRedis();
});
test.after.always(async (t) => {
  await t.context.redis?.stop();
});

/** Caches on one shared state: `pod()` is another process's view of it (the memory cache has one process, so one view). */
interface World {
  pod(): Promise<SessionCache>;
  /** Lets `ms` pass for the cache's clock. */
  advance(ms: number): Promise<void>;
}

const hash = () => randomBytes(16).toString("hex");
let ids = 0;
const session = (expiresInMs: number): CachedSession => ({ sessionId: ++ids, userId: 7, username: "ana", expiresAt: Date.now() + expiresInMs });
const HOUR = 3_600_000;

function memoryWorld(t: ExecutionContext<Context>): World {
  const clock = FakeTimers.install({ toFake: ["Date"], now: Date.now() });
  const cache = new MemorySessionCache();
  t.teardown(() => {
    clock.uninstall();
    return cache.close();
  });
  return { pod: async () => cache, advance: async (ms) => void clock.tick(ms) };
}

/** A Redis cache as a pod wires it: the command connection and a subscriber for revocations. */
async function redisCache(t: ExecutionContext<Context>): Promise<RedisSessionCache> {
  const commands = createRedis(t.context.redis.url, "commands", log);
  const revocations = createRedis(t.context.redis.url, "revocations", log);
  await Promise.all([connectRedis(commands), connectRedis(revocations)]);
  const cache = new RedisSessionCache(commands, revocations, log);
  await cache.start();
  t.teardown(async () => {
    await cache.close();
    commands.disconnect();
  });
  return cache;
}

function redisWorld(t: ExecutionContext<Context>): World {
  return { pod: () => redisCache(t), advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) };
}

const IMPLEMENTATIONS: [string, (t: ExecutionContext<Context>) => World][] = [
  ["memory", memoryWorld],
  ["redis", redisWorld],
];

// ---------------------------------------------------------------------------
// The contract, for every implementation

for (const [impl, makeWorld] of IMPLEMENTATIONS) {
  test(`${impl}: an unknown token is a miss; a cached one comes back as set, on every pod`, async (t) => {
    const world = makeWorld(t);
    const [a, b] = [await world.pod(), await world.pod()];
    const [known, unknown] = [hash(), hash()];
    const cached = session(HOUR);
    await a.set(known, cached);
    t.deepEqual(await a.get(known), cached);
    t.deepEqual(await b.get(known), cached);
    t.is(await a.get(unknown), undefined);
  });

  test(`${impl}: a cached session is never returned after it expires`, async (t) => {
    const world = makeWorld(t);
    const cache = await world.pod();
    const [soon, past] = [hash(), hash()];
    await cache.set(soon, session(300));
    await cache.set(past, session(-1));
    t.is(await cache.get(past), undefined, "an expired session was cached");
    t.truthy(await cache.get(soon));
    await world.advance(350);
    t.is(await cache.get(soon), undefined);
  });

  test(`${impl}: a revoked token reads "revoked" on every pod, and a late set cannot put it back`, async (t) => {
    const world = makeWorld(t);
    const [a, b] = [await world.pod(), await world.pod()];
    const token = hash();
    const cached = session(HOUR);
    await a.set(token, cached);
    await b.revoke(token, cached.sessionId, cached.expiresAt);
    t.is(await a.get(token), "revoked");
    // A verification that read the session before the revocation, and caches it after.
    await a.set(token, cached);
    t.is(await b.get(token), "revoked");
    t.is(await a.get(token), "revoked");
  });

  test(`${impl}: revoking tells the listeners of every pod, the revoking one before revoke resolves`, async (t) => {
    const world = makeWorld(t);
    const [a, b] = [await world.pod(), await world.pod()];
    const [heardA, heardB]: number[][] = [[], []];
    a.onRevoked((id) => heardA.push(id));
    b.onRevoked((id) => heardB.push(id));
    const cached = session(HOUR);
    await b.revoke(hash(), cached.sessionId, cached.expiresAt);
    t.deepEqual(heardB, [cached.sessionId]);
    for (let waited = 0; heardA.length === 0 && waited < 5_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    t.deepEqual(heardA, [cached.sessionId]);
  });
}

// ---------------------------------------------------------------------------
// The trust bound of each, and Redis down

test("memory: a cached session is trusted for 60 s at most, whatever its expiry", async (t) => {
  const world = memoryWorld(t);
  const cache = await world.pod();
  const token = hash();
  await cache.set(token, session(HOUR));
  await world.advance(60_000);
  t.truthy(await cache.get(token), "trusted through the 60th second");
  await world.advance(1);
  t.is(await cache.get(token), undefined);
});

test("redis: a cached session lives 5 s at most in Redis; a tombstone lives until the token would have expired", async (t) => {
  const cache = await redisCache(t);
  const admin = new Redis(t.context.redis.url);
  t.teardown(() => admin.disconnect());
  const [token, revoked] = [hash(), hash()];
  await cache.set(token, session(HOUR));
  const ttl = await admin.pttl(sessionKey(token));
  t.true(ttl > 4_000 && ttl <= 5_000, `cached for ${ttl} ms`);
  const doomed = session(HOUR);
  await cache.revoke(revoked, doomed.sessionId, doomed.expiresAt);
  const tombstone = await admin.pttl(sessionKey(revoked));
  t.true(tombstone > HOUR - 60_000 && tombstone <= HOUR, `tombstone for ${tombstone} ms`);
});

test("redis: while Redis is unreachable a lookup is a miss and caching is skipped, without throwing", async (t) => {
  // Nothing listens on port 1, and commands are not queued (lib/redis.ts): every command fails at once.
  const [commands, revocations] = [createRedis("redis://127.0.0.1:1", "down", log), createRedis("redis://127.0.0.1:1", "down-sub", log)];
  t.teardown(() => {
    commands.disconnect();
    revocations.disconnect();
  });
  const cache = new RedisSessionCache(commands, revocations, log);
  const token = hash();
  await cache.set(token, session(HOUR));
  t.is(await cache.get(token), undefined);
  const listened: number[] = [];
  cache.onRevoked((id) => listened.push(id));
  const doomed = session(HOUR);
  await cache.revoke(token, doomed.sessionId, doomed.expiresAt).catch(() => undefined);
  t.deepEqual(listened, [doomed.sessionId], "this pod's own streams end even when Redis is down");
});
