import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, RLWrapperTimeouts, type RateLimiterAbstract } from "rate-limiter-flexible";
import { rateLimitPrefix } from "../lib/keys.js";
import type { Logger } from "../lib/logger.js";
import type { RateLimiter, RateRule } from "./rate-limit.js";

/** How long the Redis store may take to answer before this pod's memory store decides instead. */
export const REDIS_LIMIT_TIMEOUT_MS = 500;

/** A fixed window of rate-limiter-flexible: `points` per `duration` seconds (whole seconds: Redis expires in seconds). */
export interface Window {
  points: number;
  duration: number;
}

/**
 * The rate-limiter-flexible windows that best match a token bucket of
 * `burst` at once and `perSecond` sustained (the library has fixed windows,
 * no bucket): a main window of `perSecond` points per second, and, as the
 * library's BurstyRateLimiter does, a burst pool of the remaining
 * `burst - perSecond` points that a key draws on only when the main window is
 * spent, refilled every `ceil(burst / perSecond)` seconds (the time a bucket
 * takes to refill from empty). So a rested key gets exactly `burst` at once and
 * `perSecond` more each second after; a key that keeps flooding also gets the
 * burst pool back every refill period, at most `perSecond + (burst -
 * perSecond) / ceil(burst / perSecond)` a second in the long run (under twice
 * `perSecond`). A `burst` at or below `perSecond` means no pool: `perSecond`
 * at once and each second.
 */
export function windowsFor(rule: RateRule): { main: Window; burst: Window | undefined } {
  const perSecond = Math.max(1, Math.floor(rule.perSecond));
  const extra = Math.floor(rule.burst) - perSecond;
  return {
    main: { points: perSecond, duration: 1 },
    burst: extra > 0 ? { points: extra, duration: Math.ceil(rule.burst / perSecond) } : undefined,
  };
}

/** One of the library's limiters: memory, or Redis insured by memory. */
type Store = Pick<RateLimiterAbstract, "consume" | "reward" | "get">;

/** The main window, and the burst pool that is drawn on once the main window is spent. */
class FlexibleRateLimiter implements RateLimiter {
  constructor(
    private readonly main: Store,
    private readonly mainPoints: number,
    private readonly burst: Store | undefined,
    private readonly log: Logger,
  ) {}

  async take(key: string): Promise<boolean> {
    if (await this.consume(this.main, key)) return true;
    return this.burst !== undefined && (await this.consume(this.burst, key));
  }

  /**
   * Gives the point back to the window it most likely came from: the burst
   * pool while the main window is spent (the library counts refused attempts
   * too, so a spent main window stays spent), else the main window.
   */
  async refund(key: string): Promise<void> {
    try {
      const main = await this.main.get(key);
      const spent = main !== null && main.consumedPoints > this.mainPoints;
      await (spent && this.burst !== undefined ? this.burst : this.main).reward(key, 1);
    } catch (err) {
      this.log.warn({ err, key }, "could not give a rate limit point back");
    }
  }

  private async consume(store: Store, key: string): Promise<boolean> {
    try {
      await store.consume(key, 1);
      return true;
    } catch (err) {
      if (err instanceof RateLimiterRes) return false;
      // Both the store and its insurance failed: flood control must never refuse a send for that.
      this.log.warn({ err, key }, "rate limiter store failed; allowing the action");
      return true;
    }
  }
}

/** A limiter of this process only (the embedded mode, and the insurance of the Redis one). */
export function memoryRateLimiter(name: string, rule: RateRule, log: Logger): RateLimiter {
  const { main, burst } = windowsFor(rule);
  const memory = (window: Window, suffix: string) => new RateLimiterMemory({ keyPrefix: rateLimitPrefix(name + suffix), ...window });
  return new FlexibleRateLimiter(
    memory(main, ""),
    main.points,
    burst && memory(burst, ":burst"),
    log.child({ component: "rate-limit", limiter: name }),
  );
}

/**
 * A limiter shared by every pod through Redis (`redis`: the command
 * connection, which fails fast while Redis is unreachable). Each window is
 * insured by a memory window of this pod: when Redis is down, not ready, or
 * slower than `REDIS_LIMIT_TIMEOUT_MS`, the pod limits on its own, so Redis
 * being down never refuses a send.
 */
export function redisRateLimiter(redis: Redis, name: string, rule: RateRule, log: Logger): RateLimiter {
  const { main, burst } = windowsFor(rule);
  const insured = (window: Window, suffix: string) => {
    const keyPrefix = rateLimitPrefix(name + suffix);
    const insurance = new RateLimiterMemory({ keyPrefix, ...window });
    return new RLWrapperTimeouts({
      limiter: new RateLimiterRedis({ storeClient: redis, keyPrefix, ...window, rejectIfRedisNotReady: true, insuranceLimiter: insurance }),
      insuranceLimiter: insurance,
      timeoutMs: REDIS_LIMIT_TIMEOUT_MS,
    });
  };
  return new FlexibleRateLimiter(
    insured(main, ""),
    main.points,
    burst && insured(burst, ":burst"),
    log.child({ component: "rate-limit", limiter: name }),
  );
}
