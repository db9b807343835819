import type { CachedSession, SessionCache } from "./session-cache.js";

/** How long a verified token is trusted without asking Postgres again. Revocation is immediate regardless. */
const TTL_MS = 60_000;
const MAX_ENTRIES = 50_000;

/** The embedded mode's cache: one process, so revocation is a local delete. */
export class MemorySessionCache implements SessionCache {
  /** A revoked token keeps a tombstone until its cache entry would have lapsed, so that a verification racing with the revocation cannot put it back. */
  private readonly entries = new Map<string, { session: CachedSession | "revoked"; until: number }>();
  private readonly listeners: ((sessionId: number) => void)[] = [];

  async get(tokenHash: string): Promise<CachedSession | "revoked" | undefined> {
    const entry = this.entries.get(tokenHash);
    if (entry === undefined) return undefined;
    if (entry.until <= Date.now()) {
      this.entries.delete(tokenHash);
      return undefined;
    }
    return entry.session;
  }

  async set(tokenHash: string, session: CachedSession): Promise<void> {
    if (this.entries.get(tokenHash)?.session === "revoked") return;
    if (this.entries.size >= MAX_ENTRIES) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(tokenHash, { session, until: Math.min(Date.now() + TTL_MS, session.expiresAt) });
  }

  async revoke(tokenHash: string, sessionId: number, _expiresAt: number): Promise<void> {
    this.entries.delete(tokenHash);
    this.entries.set(tokenHash, { session: "revoked", until: Date.now() + TTL_MS });
    for (const listener of this.listeners) listener(sessionId);
  }

  onRevoked(listener: (sessionId: number) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    this.entries.clear();
  }
}
