import type { LRUCache } from "lru-cache";
import { boundedCache } from "../lib/bounded-cache.js";
import { type Clock, systemClock } from "../lib/clock.js";
import type { CachedSession, SessionCache } from "./session-cache.js";

/** How long a verified token is trusted without asking Postgres again (ms). Revocation is immediate regardless. */
const TTL_MS = 60_000;
/** Tokens kept at most; the least recently used goes first. */
const MAX_ENTRIES = 50_000;

/** The embedded mode's cache: one process, so revocation is a local delete. */
export class MemorySessionCache implements SessionCache {
  /** A revoked token keeps a tombstone until its cache entry would have lapsed, so that a verification racing with the revocation cannot put it back. */
  private readonly entries: LRUCache<string, CachedSession | "revoked">;
  private readonly listeners: ((sessionId: number) => void)[] = [];

  /** @param clock what entries expire by (epoch ms, as `expiresAt`). Default the system clock. */
  constructor(private readonly clock: Clock = systemClock) {
    // ttlResolution 0: the clock is read at every lookup, never a cached "now".
    this.entries = boundedCache(MAX_ENTRIES, { perf: { now: () => clock.now() }, ttlResolution: 0 });
  }

  async get(tokenHash: string): Promise<CachedSession | "revoked" | undefined> {
    return this.entries.get(tokenHash);
  }

  async set(tokenHash: string, session: CachedSession): Promise<void> {
    if (this.entries.get(tokenHash) === "revoked") return;
    const ttl = Math.min(TTL_MS, session.expiresAt - this.clock.now());
    if (ttl > 0) this.entries.set(tokenHash, session, { ttl });
  }

  async revoke(tokenHash: string, sessionId: number, _expiresAt: number): Promise<void> {
    this.entries.set(tokenHash, "revoked", { ttl: TTL_MS });
    for (const listener of this.listeners) listener(sessionId);
  }

  onRevoked(listener: (sessionId: number) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    this.entries.clear();
  }
}
