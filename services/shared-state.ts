import { MemorySessionCache } from "./auth/session-cache-memory.js";
import { RedisSessionCache } from "./auth/session-cache-redis.js";
import type { SessionCache } from "./auth/session-cache.js";
import type { Bus } from "./chat/bus.js";
import { MemoryBus } from "./chat/bus-memory.js";
import { RedisBus } from "./chat/bus-redis.js";
import type { Presence } from "./chat/presence.js";
import { MemoryPresence } from "./chat/presence-memory.js";
import { RedisPresence } from "./chat/presence-redis.js";
import type { Config } from "./lib/config.js";
import type { Logger } from "./lib/logger.js";
import { connectRedis, createRedis } from "./lib/redis.js";

/** What pods share: the bus, presence and the session cache, each in memory or in Redis. */
export interface SharedState {
  bus: Bus;
  presence: Presence;
  sessionCache: SessionCache;
  /** Closes the Redis connections, if any (after presence and the bus are closed). */
  close(): Promise<void>;
}

/** The only place where the embedded mode and the cluster mode differ: which implementations are wired in. */
export async function openSharedState(config: Config, log: Logger): Promise<SharedState> {
  if (config.redisUrl === undefined) {
    log.info("no REDIS_URL: in-memory bus and presence (one process only)");
    return { bus: new MemoryBus(), presence: new MemoryPresence(), sessionCache: new MemorySessionCache(), close: async () => {} };
  }
  const redisLog = log.child({ component: "redis" });
  const commands = createRedis(config.redisUrl, "commands", redisLog, { autoPipelining: true });
  // Streams end when the bus subscription drops, and new streams subscribe afresh, so nothing is resubscribed.
  const busSubscriber = createRedis(config.redisUrl, "bus", redisLog, { autoResubscribe: false });
  const revocations = createRedis(config.redisUrl, "revocations", redisLog);
  await Promise.all([commands, busSubscriber, revocations].map((redis) => connectRedis(redis)));
  const sessionCache = new RedisSessionCache(commands, revocations, redisLog);
  await sessionCache.start();
  return {
    bus: new RedisBus(commands, busSubscriber, redisLog),
    presence: new RedisPresence(commands, config.podName, config.presenceTtlSeconds * 1000, redisLog),
    sessionCache,
    close: async () => {
      for (const redis of [commands, busSubscriber, revocations]) redis.disconnect();
    },
  };
}
