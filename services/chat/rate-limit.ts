/**
 * Flood control per user, as the domain sees it: whether one more action is
 * allowed now, and a way to give a point back. The stores behind it (memory
 * for one process, Redis for the whole cluster) live in rate-limit-flexible.ts;
 * services/backends.ts chooses one.
 */
export interface RateLimiter {
  /** Takes one point for `key`; resolves false when none is left. Never rejects: a store that is down lets the action through. */
  take(key: string): Promise<boolean>;
  /** Gives back one point taken by `take` (a send that turned out to be a retry). Never rejects. */
  refund(key: string): Promise<void>;
}

/** How many actions a limiter allows: `burst` at once, `perSecond` sustained. */
export interface RateRule {
  /** Sustained actions per second, at least 1. */
  perSecond: number;
  /** Actions allowed at once from a rested key, at least 1. */
  burst: number;
}

/** Makes the limiter named `name` (a key prefix: "send", "typing") for `rule`. */
export type RateLimiterFactory = (name: string, rule: RateRule) => RateLimiter;
