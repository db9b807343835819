import { sql } from "drizzle-orm";
import { boundedCache } from "../lib/bounded-cache.js";
import type { Db } from "../db/client.js";
import { type UserRef, users } from "../db/schema.js";
import { AppError } from "../lib/app-error.js";
import { quote } from "../lib/text.js";
import { checkName } from "../lib/validation.js";

/** Lookups kept at most; the least recently used goes first. */
const CACHE_LIMIT = 10_000;

/** Finds users by name, case-insensitively, as a send to a username or a typing frame needs. */
export class UserDirectory {
  /** Usernames never change, so a lookup can be kept; unknown names are not cached (they may sign up). */
  private readonly cache = boundedCache<string, UserRef>(CACHE_LIMIT);

  constructor(private readonly db: Db) {}

  /** The user named `username` (any case); undefined when nobody has that name. */
  async find(username: string): Promise<UserRef | undefined> {
    const key = username.toLowerCase();
    const cached = this.cache.get(key);
    if (cached) return cached;
    const [row] = await this.db.select({ id: users.id, username: users.username }).from(users).where(sql`lower(${users.username}) = ${key}`);
    if (row) this.cache.set(key, row);
    return row;
  }

  /** The user named `username`; throws AppError `invalid_argument` for a bad name, `not_found` when nobody has it. */
  async get(username: string): Promise<UserRef> {
    const user = await this.find(checkName(username, "username"));
    if (user === undefined) throw new AppError("not_found", `no user named ${quote(username)}`);
    return user;
  }
}
