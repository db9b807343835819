/** What a pod remembers about a valid token, so that it need not ask Postgres on every call. */
export interface CachedSession {
  sessionId: number;
  userId: number;
  username: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/**
 * A cache of verified tokens, keyed by token hash, shared by every pod that
 * can see it. `revoke` removes a token everywhere at once and tells every
 * `onRevoked` listener, so that open streams on that token can be ended.
 */
export interface SessionCache {
  /** The cached session, "revoked" when it was revoked, undefined when unknown (ask Postgres). */
  get(tokenHash: string): Promise<CachedSession | "revoked" | undefined>;
  set(tokenHash: string, session: CachedSession): Promise<void>;
  revoke(tokenHash: string, sessionId: number, expiresAt: number): Promise<void>;
  onRevoked(listener: (sessionId: number) => void): void;
  close(): Promise<void>;
}
