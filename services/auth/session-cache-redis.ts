import type { Redis } from "ioredis";
import { revocationChannel, sessionKey } from "../lib/keys.js";
import type { Logger } from "../lib/logger.js";
import type { CachedSession, SessionCache } from "./session-cache.js";

/**
 * A cached session is trusted this long at most. A revocation replaces it at
 * once with a tombstone; this bound is for a tombstone that could not be
 * written (Redis down or frozen at LogOut): design.md, "Authentication", gives
 * a revoked token at most 10 s on every pod whatever Redis does.
 */
const MAX_TTL_MS = 5_000;
const REVOKED = "revoked";

/**
 * Verified tokens shared by every pod. A revoked token leaves a tombstone
 * until it would have expired, so that a verification racing with the
 * revocation cannot put it back; the revocation is also published, so that
 * every pod ends the streams opened with it. If Redis is unreachable, a
 * lookup is a miss and Postgres answers.
 */
export class RedisSessionCache implements SessionCache {
  private readonly listeners: ((sessionId: number) => void)[] = [];

  constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly log: Logger,
  ) {
    subscriber.on("message", (channel: string, payload: string) => {
      if (channel !== revocationChannel) return;
      for (const listener of this.listeners) listener(Number(payload));
    });
  }

  /** Starts listening for revocations from other pods. */
  async start(): Promise<void> {
    await this.subscriber.subscribe(revocationChannel);
  }

  async get(tokenHash: string): Promise<CachedSession | "revoked" | undefined> {
    try {
      const value = await this.redis.get(sessionKey(tokenHash));
      if (value === null) return undefined;
      return value === REVOKED ? "revoked" : (JSON.parse(value) as CachedSession);
    } catch (err) {
      this.log.debug({ err }, "session cache unavailable; asking Postgres");
      return undefined;
    }
  }

  async set(tokenHash: string, session: CachedSession): Promise<void> {
    const ttl = Math.min(MAX_TTL_MS, session.expiresAt - Date.now());
    if (ttl <= 0) return;
    // NX: never overwrite a tombstone.
    await this.redis.set(sessionKey(tokenHash), JSON.stringify(session), "PX", ttl, "NX").catch((err: unknown) => {
      this.log.debug({ err }, "could not cache a session");
    });
  }

  async revoke(tokenHash: string, sessionId: number, expiresAt: number): Promise<void> {
    // This pod's streams end at once, whatever Redis does; other pods hear it through the channel.
    for (const listener of this.listeners) listener(sessionId);
    const ttl = Math.max(1000, expiresAt - Date.now());
    await this.redis.set(sessionKey(tokenHash), REVOKED, "PX", ttl);
    await this.redis.publish(revocationChannel, String(sessionId));
  }

  onRevoked(listener: (sessionId: number) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    this.subscriber.disconnect();
  }
}
