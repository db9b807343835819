import { sql } from "drizzle-orm";
import { boundedCache } from "../lib/bounded-cache.js";
import { queryRows, type Db } from "../db/client.js";
import { conversations, groupMembers, groups, READ_CURSOR_FORWARD } from "../db/schema.js";
import { AppError, isUniqueViolation } from "../lib/app-error.js";
import { quote } from "../lib/text.js";
import { groupConversationId } from "./conversation-ids.js";

export interface GroupView {
  name: string;
  conversationId: string;
  memberCount: number;
  isMember: boolean;
  createdAt: Date;
}

interface GroupRow {
  name: string;
  conversation_id: string;
  created_at: string | Date;
  member_count: string | number;
  is_member: boolean;
}

/** Browsing returns at most this many groups. */
const LIST_LIMIT = 200;

/** Postgres access for groups and their members. */
export class GroupStore {
  /** Group names never change and groups are never deleted, so a name once found can be kept. */
  private readonly names = boundedCache<string, string>(10_000);

  constructor(private readonly db: Db) {}

  /** The group's name as created, by conversation id; undefined when there is no such group. */
  async nameOf(conversationId: string): Promise<string | undefined> {
    const cached = this.names.get(conversationId);
    if (cached !== undefined) return cached;
    const [row] = await queryRows<{ name: string }>(this.db, sql`SELECT name FROM groups WHERE conversation_id = ${conversationId}`);
    if (row !== undefined) {
      this.names.set(conversationId, row.name);
    }
    return row?.name;
  }

  /** Creates the group, its conversation and the creator's membership together. ALREADY_EXISTS when the name is taken. */
  async create(name: string, userId: number): Promise<GroupView> {
    const conversationId = groupConversationId(name);
    try {
      await this.db.transaction(async (tx) => {
        await tx.insert(conversations).values({ id: conversationId, kind: "group" });
        const [group] = await tx.insert(groups).values({ name, conversationId, createdBy: userId }).returning({ id: groups.id });
        await tx.insert(groupMembers).values({ groupId: group.id, userId });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError("already_exists", `group ${quote(name)} already exists`);
      throw err;
    }
    return this.get(name, userId);
  }

  /** Adds the user (idempotent; `joined` says whether this call added them). NOT_FOUND for an unknown group. */
  /**
   * Adds the user, and in the same statement starts their read cursor at the
   * group's end (history before joining is readable, not unread), so that no
   * failure can leave a member without one. `joined` is false when they were
   * a member already (nothing changes); `lastSeq` is where the cursor stands.
   */
  async join(name: string, userId: number): Promise<GroupView & { joined: boolean; lastSeq: number }> {
    const rows = await queryRows<{ last_seq: string | number }>(
      this.db,
      sql`WITH joined AS (
            INSERT INTO group_members (group_id, user_id)
            SELECT g.id, ${userId}::bigint FROM groups g WHERE lower(g.name) = lower(${name})
            ON CONFLICT DO NOTHING RETURNING group_id
          )
          INSERT INTO read_cursors (user_id, conversation_id, last_read_seq)
          SELECT ${userId}::bigint, c.id, c.last_seq
          FROM joined JOIN groups g ON g.id = joined.group_id JOIN conversations c ON c.id = g.conversation_id
          ${sql.raw(READ_CURSOR_FORWARD)}
          RETURNING last_read_seq AS last_seq`,
    );
    const view = await this.get(name, userId);
    const joined = rows.length > 0;
    return { ...view, isMember: view.isMember || joined, joined, lastSeq: joined ? Number(rows[0].last_seq) : 0 };
  }

  /** Removes the user. NOT_FOUND for an unknown group, PERMISSION_DENIED when not a member. */
  async leave(name: string, userId: number): Promise<GroupView> {
    const view = await this.get(name, userId);
    if (!view.isMember) throw new AppError("permission_denied", `not a member of group ${quote(view.name)}`);
    await queryRows(
      this.db,
      sql`DELETE FROM group_members gm USING groups g
          WHERE gm.group_id = g.id AND lower(g.name) = lower(${name}) AND gm.user_id = ${userId}`,
    );
    return { ...view, isMember: false, memberCount: view.memberCount - 1 };
  }

  /** One group as `userId` sees it. NOT_FOUND when there is none by that name. */
  async get(name: string, userId: number): Promise<GroupView> {
    const [row] = await this.select(userId, sql`lower(g.name) = lower(${name})`);
    if (row === undefined) throw new AppError("not_found", `no group named ${quote(name)}`);
    return row;
  }

  /** Groups whose name contains `query` (ignoring case), or only the user's own. */
  async list(userId: number, query: string, mine: boolean): Promise<GroupView[]> {
    const pattern = `%${query.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const filter = mine
      ? sql`lower(g.name) LIKE ${pattern} AND EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = ${userId})`
      : sql`lower(g.name) LIKE ${pattern}`;
    return this.select(userId, filter);
  }

  /** The conversation ids of the user's groups. */
  async conversationsOf(userId: number): Promise<string[]> {
    const rows = await queryRows<{ conversation_id: string }>(
      this.db,
      sql`SELECT g.conversation_id FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = ${userId}`,
    );
    return rows.map((r) => r.conversation_id);
  }

  private async select(userId: number, where: ReturnType<typeof sql>): Promise<GroupView[]> {
    const rows = await queryRows<GroupRow>(
      this.db,
      sql`SELECT g.name, g.conversation_id, g.created_at,
                 (SELECT count(*) FROM group_members m WHERE m.group_id = g.id) AS member_count,
                 EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = ${userId}) AS is_member
          FROM groups g WHERE ${where}
          ORDER BY lower(g.name) LIMIT ${LIST_LIMIT}`,
    );
    return rows.map((r) => ({
      name: r.name,
      conversationId: r.conversation_id,
      memberCount: Number(r.member_count),
      isMember: r.is_member,
      createdAt: new Date(r.created_at),
    }));
  }
}
