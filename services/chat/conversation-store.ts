import { sql } from "drizzle-orm";
import { queryRows, type Db } from "../db/client.js";
import type { ConversationKindName } from "../db/schema.js";
import { BROADCAST_ID } from "./conversation-ids.js";

/** A conversation the user takes part in, with their read position: one row of the inbox. */
export interface ConversationRow {
  id: string;
  kind: ConversationKindName;
  /** The other user's name for a DM, the group's name, "broadcast". */
  title: string;
  lastSeq: number;
  lastReadSeq: number;
  /** Others' messages after the read cursor. */
  unread: number;
}

/** Where a user stands in one conversation: what a resuming stream needs. */
export interface Position {
  id: string;
  lastSeq: number;
  lastReadSeq: number;
}

/** `ok`, or why the user may not read the conversation. */
export type Access = "ok" | "not_found" | "forbidden";

/** The conversations a user takes part in (DMs, their groups, broadcast), as `c`, with their read cursor as `rc`. */
const participating = (userId: number) => sql`
  FROM conversations c
  LEFT JOIN groups g ON g.conversation_id = c.id
  LEFT JOIN read_cursors rc ON rc.conversation_id = c.id AND rc.user_id = ${userId}
  WHERE c.id = ${BROADCAST_ID}
     OR c.user_a = ${userId} OR c.user_b = ${userId}
     OR EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = g.id AND gm.user_id = ${userId})`;

/** Postgres access for who takes part in which conversation: the inbox, resume positions, access checks, presence peers. */
export class ConversationStore {
  constructor(private readonly db: Db) {}

  /** Every conversation the user takes part in (DMs, their groups, broadcast), newest activity first. */
  async conversationsOf(userId: number): Promise<ConversationRow[]> {
    const rows = await queryRows<{
      id: string;
      kind: ConversationKindName;
      title: string | null;
      last_seq: string | number;
      last_read_seq: string | number;
      unread: string | number;
    }>(
      this.db,
      sql`SELECT c.id, c.kind, c.last_seq,
                 COALESCE(rc.last_read_seq, 0) AS last_read_seq,
                 CASE c.kind
                   WHEN 'direct' THEN (SELECT u.username FROM users u
                                       WHERE u.id = CASE WHEN c.user_a = ${userId} THEN c.user_b ELSE c.user_a END)
                   WHEN 'group' THEN g.name
                   ELSE 'broadcast'
                 END AS title,
                 (SELECT count(*) FROM messages m
                  WHERE m.conversation_id = c.id AND m.seq > COALESCE(rc.last_read_seq, 0)
                    AND m.sender_id <> ${userId}) AS unread
          ${participating(userId)}
          ORDER BY c.last_message_at DESC NULLS LAST, c.id`,
    );
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      title: r.title ?? "",
      lastSeq: Number(r.last_seq),
      lastReadSeq: Number(r.last_read_seq),
      unread: Number(r.unread),
    }));
  }

  /**
   * Where the user stands in each conversation, without titles or unread
   * counts: what a resuming stream needs, cheaply (counting unread messages
   * walks every unread row, which a reconnect storm cannot afford).
   */
  async positionsOf(userId: number): Promise<Position[]> {
    const rows = await queryRows<{ id: string; last_seq: string | number; last_read_seq: string | number }>(
      this.db,
      sql`SELECT c.id, c.last_seq, COALESCE(rc.last_read_seq, 0) AS last_read_seq ${participating(userId)}`,
    );
    return rows.map((r) => ({ id: r.id, lastSeq: Number(r.last_seq), lastReadSeq: Number(r.last_read_seq) }));
  }

  /** Whether the user may read and mark `conversationId`, and its last seq (0 when not found). */
  async access(userId: number, conversationId: string): Promise<{ access: Access; lastSeq: number }> {
    const [row] = await queryRows<{ kind: ConversationKindName; user_a: unknown; user_b: unknown; last_seq: unknown; member: boolean }>(
      this.db,
      sql`SELECT c.kind, c.user_a, c.user_b, c.last_seq,
                 EXISTS (SELECT 1 FROM group_members gm JOIN groups g ON g.id = gm.group_id
                         WHERE g.conversation_id = c.id AND gm.user_id = ${userId}) AS member
          FROM conversations c WHERE c.id = ${conversationId}`,
    );
    if (row === undefined) return { access: "not_found", lastSeq: 0 };
    const lastSeq = Number(row.last_seq);
    const ok =
      row.kind === "broadcast" ||
      (row.kind === "direct" && (Number(row.user_a) === userId || Number(row.user_b) === userId)) ||
      (row.kind === "group" && row.member);
    return { access: ok ? "ok" : "forbidden", lastSeq };
  }

  /** Everyone who shares a DM or a group with the user: the audience of their presence. */
  async peersOf(userId: number): Promise<number[]> {
    const rows = await queryRows<{ peer: string | number }>(
      this.db,
      sql`SELECT CASE WHEN user_a = ${userId} THEN user_b ELSE user_a END AS peer
          FROM conversations WHERE kind = 'direct' AND (user_a = ${userId} OR user_b = ${userId})
          UNION
          SELECT other.user_id FROM group_members mine
          JOIN group_members other ON other.group_id = mine.group_id
          WHERE mine.user_id = ${userId}`,
    );
    return rows.map((r) => Number(r.peer)).filter((id) => id !== userId);
  }
}
