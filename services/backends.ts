import { MemorySessionCache } from "./auth/session-cache-memory.js";
import { RedisSessionCache } from "./auth/session-cache-redis.js";
import type { SessionCache } from "./auth/session-cache.js";
import type { Bus } from "./chat/bus.js";
import { MemoryBus } from "./chat/bus-memory.js";
import { RedisBus } from "./chat/bus-redis.js";
import type { Presence } from "./chat/presence.js";
import { MemoryPresence } from "./chat/presence-memory.js";
import { RedisPresence } from "./chat/presence-redis.js";
import type { RateLimiterFactory } from "./chat/rate-limit.js";
import { memoryRateLimiter, redisRateLimiter } from "./chat/rate-limit-flexible.js";
import { presenceHeartbeatMs, type Config } from "./lib/config.js";
import type { Logger } from "./lib/logger.js";
import { connectRedis, createRedis } from "./lib/redis.js";
import type { PodReports } from "./ops/pod-reports.js";
import { MemoryPodReports } from "./ops/pod-reports-memory.js";
import { RedisPodReports } from "./ops/pod-reports-redis.js";
import type { ScalingDecisions } from "./ops/scaling-decisions.js";
import { MemoryScalingDecisions } from "./ops/scaling-decisions-memory.js";
import { RedisScalingDecisions } from "./ops/scaling-decisions-redis.js";

/**
 * The implementations that differ between the embedded mode and the cluster
 * mode: the bus, presence, the session cache and the rate limits, each in
 * memory (one process) or in Redis (shared by every pod).
 */
export interface Backends {
  bus: Bus;
  presence: Presence;
  sessionCache: SessionCache;
  /** Rate limits per user: per process when embedded, across the cluster with Redis (insured by memory while Redis is down). */
  rateLimiter: RateLimiterFactory;
  /** A PING on the commands connection, for the metrics' probe; undefined when there is no Redis. */
  pingRedis: (() => Promise<unknown>) | undefined;
  /** The pods' dashboard reports and the controller's decisions: per process when embedded, shared in Redis. */
  podReports: PodReports;
  scalingDecisions: ScalingDecisions;
  /** Closes the Redis connections, if any (after presence and the bus are closed). */
  close(): Promise<void>;
}

/** The only place where the embedded mode and the cluster mode differ: which implementations are wired in. */
export async function openBackends(config: Config, log: Logger, hooks: { onRedisFailure?: () => void } = {}): Promise<Backends> {
  if (config.redisUrl === undefined) {
    log.info("no REDIS_URL: in-memory bus and presence (one process only)");
    return {
      bus: new MemoryBus(),
      presence: new MemoryPresence({ graceMs: config.presenceGraceSeconds * 1000, log }),
      sessionCache: new MemorySessionCache(),
      rateLimiter: (name, rule) => memoryRateLimiter(name, rule, log),
      pingRedis: undefined,
      podReports: new MemoryPodReports(),
      scalingDecisions: new MemoryScalingDecisions(),
      close: async () => {},
    };
  }
  const redisLog = log.child({ component: "redis" });
  const onFailure = hooks.onRedisFailure;
  const commands = createRedis(config.redisUrl, "commands", redisLog, { autoPipelining: true, onFailure });
  // Streams end when the bus subscription drops, and new streams subscribe afresh, so nothing is resubscribed.
  const busSubscriber = createRedis(config.redisUrl, "bus", redisLog, { autoResubscribe: false, onFailure });
  const revocations = createRedis(config.redisUrl, "revocations", redisLog, { onFailure });
  await Promise.all([commands, busSubscriber, revocations].map((redis) => connectRedis(redis)));
  const sessionCache = new RedisSessionCache(commands, revocations, redisLog);
  await sessionCache.start();
  return {
    bus: new RedisBus(commands, busSubscriber, redisLog),
    presence: await RedisPresence.start({
      redis: commands,
      pod: config.podName,
      ttlMs: config.presenceTtlSeconds * 1000,
      heartbeatMs: presenceHeartbeatMs(config),
      graceMs: config.presenceGraceSeconds * 1000,
      log: redisLog,
    }),
    sessionCache,
    rateLimiter: (name, rule) => redisRateLimiter(commands, name, rule, redisLog),
    pingRedis: () => commands.ping(),
    podReports: new RedisPodReports(commands),
    scalingDecisions: new RedisScalingDecisions(commands),
    close: async () => {
      for (const redis of [commands, busSubscriber, revocations]) redis.disconnect();
    },
  };
}
