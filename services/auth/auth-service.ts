import { sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { type UserRef, users } from "../db/schema.js";
import { AppError, isUniqueViolation } from "../lib/app-error.js";
import type { Logger } from "../lib/logger.js";
import { hasNul, quote } from "../lib/text.js";
import { checkName, checkPassword } from "../lib/validation.js";
import { DUMMY_HASH, hashPassword, verifyPassword } from "./passwords.js";
import { type SessionStore, userOf } from "./sessions.js";

export interface Grant {
  token: string;
  user: UserRef;
  expiresAt: Date;
}

/** Sign-up, log-in and log-out, in domain terms: no gRPC here. */
export class AuthDomain {
  constructor(
    private readonly db: Db,
    private readonly sessions: SessionStore,
    private readonly log: Logger,
  ) {}

  async signUp(username: unknown, password: unknown): Promise<Grant> {
    const name = checkName(username, "username");
    const hash = await hashPassword(checkPassword(password));
    let user: UserRef;
    try {
      user = await this.db.transaction(async (tx) => {
        const [row] = await tx.insert(users).values({ username: name, passwordHash: hash }).returning({ id: users.id, username: users.username });
        // Broadcasts from before sign-up are history, not unread mail.
        await tx.execute(
          sql`INSERT INTO read_cursors (user_id, conversation_id, last_read_seq)
              SELECT ${row.id}::bigint, id, last_seq FROM conversations WHERE kind = 'broadcast'`,
        );
        return row;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError("already_exists", "username is taken");
      throw err;
    }
    this.log.info({ userId: user.id, username: user.username }, "user signed up");
    return { ...(await this.sessions.create(user.id)), user };
  }

  async logIn(username: unknown, password: unknown): Promise<Grant> {
    // The transport refuses U+0000 already; a name Postgres could not compare is simply no user.
    const name = typeof username === "string" && !hasNul(username) ? username : "";
    const [row] = await this.db
      .select({ id: users.id, username: users.username, passwordHash: users.passwordHash })
      .from(users)
      .where(sql`lower(${users.username}) = lower(${name})`);
    // Always pay for one scrypt, so that timing does not tell which usernames exist.
    const ok = await verifyPassword(typeof password === "string" ? password : "", row?.passwordHash ?? DUMMY_HASH);
    if (row === undefined || !ok) {
      this.log.info({ username: quote(name) }, "log-in refused");
      throw new AppError("unauthenticated", "wrong username or password");
    }
    const user = { id: row.id, username: row.username };
    this.log.info({ userId: user.id }, "user logged in");
    return { ...(await this.sessions.create(user.id)), user };
  }

  async logOut(token: string | undefined): Promise<void> {
    await this.sessions.revoke(token);
  }

  async whoAmI(token: string | undefined): Promise<{ user: UserRef; expiresAt: Date }> {
    const session = await this.sessions.verify(token);
    return { user: userOf(session), expiresAt: new Date(session.expiresAt) };
  }
}
