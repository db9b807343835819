import { and, eq, gt, isNull, sql } from "drizzle-orm";
import { boundedCache } from "../lib/bounded-cache.js";
import { bigintArray, queryRows, type Db } from "../db/client.js";
import { sessions, type UserRef, users } from "../db/schema.js";
import { AppError } from "../lib/app-error.js";
import type { Logger } from "../lib/logger.js";
import type { CachedSession, SessionCache } from "./session-cache.js";
import { hashToken, newToken } from "./tokens.js";

/** `last_seen_at` is written at most this often per session, to keep reads from becoming writes. */
const LAST_SEEN_EVERY_MS = 60_000;

/** The authenticated caller of a request. */
export type Session = CachedSession;

/** The user a session belongs to. */
export const userOf = (session: Session): UserRef => ({ id: session.userId, username: session.username });

/** Creates, verifies and revokes session tokens. Used by the auth service and by every chat call. */
export class SessionStore {
  /** Sessions whose `last_seen_at` was written in the last LAST_SEEN_EVERY_MS. */
  private readonly lastSeenWritten = boundedCache<number, true>(100_000, { ttl: LAST_SEEN_EVERY_MS });

  constructor(
    private readonly db: Db,
    private readonly cache: SessionCache,
    private readonly ttlSeconds: number,
    private readonly log: Logger,
  ) {}

  async create(userId: number): Promise<{ token: string; expiresAt: Date }> {
    const token = newToken();
    const expiresAt = new Date(Date.now() + this.ttlSeconds * 1000);
    await this.db.insert(sessions).values({ userId, tokenHash: hashToken(token), expiresAt });
    return { token, expiresAt };
  }

  /** The session behind `token`; UNAUTHENTICATED when it is missing, unknown, expired or revoked. */
  async verify(token: string | undefined): Promise<Session> {
    if (!token) throw new AppError("unauthenticated", "missing bearer token");
    const tokenHash = hashToken(token);
    let session = await this.cache.get(tokenHash);
    if (session === "revoked") throw new AppError("unauthenticated", "invalid, expired or revoked token");
    if (session === undefined) {
      session = await this.load(tokenHash);
      await this.cache.set(tokenHash, session);
    }
    if (session.expiresAt <= Date.now()) throw new AppError("unauthenticated", "token expired");
    this.touch(session.sessionId);
    return session;
  }

  /** Revokes at once: the row for the audit, the cache for every pod, and open streams through `onRevoked`. */
  async revoke(token: string | undefined): Promise<void> {
    const session = await this.verify(token);
    const tokenHash = hashToken(token as string);
    await this.db.update(sessions).set({ revokedAt: sql`now()` }).where(eq(sessions.id, session.sessionId));
    // Postgres now says revoked, which is what counts: a cache that cannot be told (Redis down) only delays
    // other pods, which stop trusting their cached copy and sweep their streams against Postgres within 10 s.
    await this.cache.revoke(tokenHash, session.sessionId, session.expiresAt).catch((err: unknown) => {
      this.log.warn({ err, sessionId: session.sessionId }, "could not tell the session cache of a revocation");
    });
  }

  /**
   * Which of `sessionIds` were revoked or have expired, according to Postgres
   * (the truth about sessions): the sweep that ends streams whose revocation
   * was not heard through the cache (Redis down, frozen, a lost message).
   */
  async endedAmong(sessionIds: number[]): Promise<number[]> {
    if (sessionIds.length === 0) return [];
    const rows = await queryRows<{ id: string | number }>(
      this.db,
      sql`SELECT id FROM sessions WHERE id = ANY(${bigintArray(sessionIds)}::bigint[]) AND (revoked_at IS NOT NULL OR expires_at <= now())`,
    );
    return rows.map((r) => Number(r.id));
  }

  private async load(tokenHash: string): Promise<Session> {
    const [row] = await this.db
      .select({ sessionId: sessions.id, userId: users.id, username: users.username, expiresAt: sessions.expiresAt })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.tokenHash, tokenHash), isNull(sessions.revokedAt), gt(sessions.expiresAt, sql`now()`)));
    if (row === undefined) throw new AppError("unauthenticated", "invalid, expired or revoked token");
    return { ...row, expiresAt: row.expiresAt.getTime() };
  }

  private touch(sessionId: number): void {
    if (this.lastSeenWritten.has(sessionId)) return;
    this.lastSeenWritten.set(sessionId, true);
    this.db
      .update(sessions)
      .set({ lastSeenAt: sql`now()` })
      .where(eq(sessions.id, sessionId))
      .catch((err: unknown) => this.log.warn({ err, sessionId }, "could not record last_seen_at"));
  }
}
