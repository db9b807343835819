import { and, asc, desc, eq, gt, lt, sql } from "drizzle-orm";
import { pgCode, queryRows, type Db, type PreparedQuery } from "../db/client.js";
import { conversations, messages, users, type ConversationKindName } from "../db/schema.js";

/** A stored message, as the domain sees it. */
export interface MessageRecord {
  id: number;
  conversationId: string;
  seq: number;
  senderId: number;
  sender: string;
  toKind: ConversationKindName;
  /** The recipient's username for a DM, the group's name, "" for broadcast. */
  toName: string;
  body: string;
  clientMsgId: string;
  sentAt: Date;
}

/** A message before it is stored: Postgres gives it its id, seq and time. */
export type NewMessage = Omit<MessageRecord, "id" | "seq" | "sentAt">;

export interface UserRef {
  id: number;
  username: string;
}

/** A conversation the user takes part in, with their read position. */
export interface ConversationRow {
  id: string;
  kind: ConversationKindName;
  title: string;
  lastSeq: number;
  lastReadSeq: number;
  unread: number;
}

export type Access = "ok" | "not_found" | "forbidden";

export const BROADCAST_ID = "broadcast";
export const directId = (a: number, b: number) => (a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`);
export const groupConversationId = (name: string) => `group:${name.toLowerCase()}`;

const UNIQUE_VIOLATION = "23505";

/** The conversations a user takes part in (DMs, their groups, broadcast), as `c`, with their read cursor as `rc`. */
const participating = (userId: number) => sql`
  FROM conversations c
  LEFT JOIN groups g ON g.conversation_id = c.id
  LEFT JOIN read_cursors rc ON rc.conversation_id = c.id AND rc.user_id = ${userId}
  WHERE c.id = ${BROADCAST_ID}
     OR c.user_a = ${userId} OR c.user_b = ${userId}
     OR EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = g.id AND gm.user_id = ${userId})`;

/**
 * Takes the conversation's next seq and inserts the message in one statement.
 * $1 conversation, $2 sender id, $3 sender name, $4 to_kind, $5 to_name, $6 body, $7 client_msg_id.
 */
const appendStatement = (condition: string) => `
  WITH c AS (
    UPDATE conversations SET last_seq = last_seq + 1, last_message_at = now()
    WHERE id = $1 ${condition}
    RETURNING last_seq
  )
  INSERT INTO messages (conversation_id, seq, sender_id, sender_name, to_kind, to_name, body, client_msg_id)
  SELECT $1::text, c.last_seq, $2::bigint, $3::text, $4::text, $5::text, $6::text, $7::text FROM c
  RETURNING id, seq, sent_at`;
const APPEND = appendStatement("");

/**
 * N messages of one sender in one statement, seqs last_seq-N+1 … last_seq in array order.
 * $1 conversation, $2 N, $3 sender id, $4 sender name, $5 to_kind, $6 to_name, $7 bodies, $8 client_msg_ids.
 */
const appendManyStatement = (condition: string) => `
  WITH c AS (
    UPDATE conversations SET last_seq = last_seq + $2::int, last_message_at = now()
    WHERE id = $1 ${condition}
    RETURNING last_seq
  )
  INSERT INTO messages (conversation_id, seq, sender_id, sender_name, to_kind, to_name, body, client_msg_id)
  SELECT $1::text, c.last_seq - $2::int + v.ord, $3::bigint, $4::text, $5::text, $6::text, v.body, v.client_msg_id
  FROM c, unnest($7::text[], $8::text[]) WITH ORDINALITY AS v(body, client_msg_id, ord)
  RETURNING id, seq, sent_at, client_msg_id`;
const APPEND_MANY = appendManyStatement("");
const APPEND_MANY_TO_GROUP = appendManyStatement(`AND EXISTS (
    SELECT 1 FROM group_members gm JOIN groups g ON g.id = gm.group_id
    WHERE g.conversation_id = $1 AND gm.user_id = $3::bigint)`);
const APPEND_TO_GROUP = appendStatement(`AND EXISTS (
    SELECT 1 FROM group_members gm JOIN groups g ON g.id = gm.group_id
    WHERE g.conversation_id = $1 AND gm.user_id = $2::bigint)`);
const USER_CACHE_LIMIT = 10_000;

/** Postgres access for messages, conversations and read cursors. Every send is one round-trip. */
export class MessageStore {
  /** Usernames never change, so a lookup can be kept; unknown names are not cached (they may sign up). */
  private readonly userCache = new Map<string, UserRef>();
  /** DM conversations known to exist, so that a send need not ensure the row again. */
  private readonly knownDirect = new Set<string>();

  /**
   * @param prepared runs the send's statement as a named prepared statement, so
   * Postgres parses and plans it once per connection rather than once per send.
   */
  constructor(
    private readonly db: Db,
    private readonly prepared: PreparedQuery,
  ) {}

  async findUser(username: string): Promise<UserRef | undefined> {
    const key = username.toLowerCase();
    const cached = this.userCache.get(key);
    if (cached) return cached;
    const [row] = await this.db
      .select({ id: users.id, username: users.username })
      .from(users)
      .where(sql`lower(${users.username}) = ${key}`);
    if (row) {
      if (this.userCache.size >= USER_CACHE_LIMIT) this.userCache.clear();
      this.userCache.set(key, row);
    }
    return row;
  }

  async ensureDirect(a: number, b: number): Promise<string> {
    const id = directId(a, b);
    if (!this.knownDirect.has(id)) {
      await this.db
        .insert(conversations)
        .values({ id, kind: "direct", userA: Math.min(a, b), userB: Math.max(a, b) })
        .onConflictDoNothing();
      if (this.knownDirect.size >= USER_CACHE_LIMIT) this.knownDirect.clear();
      this.knownDirect.add(id);
    }
    return id;
  }

  /**
   * Takes the next seq and inserts the message in one statement, so both
   * commit together or not at all: the seq counter never skips. The row lock
   * on the conversation orders concurrent senders. With `memberOfGroup`, the
   * statement also checks membership. Returns undefined when the conversation
   * is missing or the sender is not a member; returns the original message
   * when `(sender, client_msg_id)` was already used.
   */
  async append(message: NewMessage, memberOfGroup?: string): Promise<{ record: MessageRecord; duplicate: boolean } | undefined> {
    // The group is the message's own conversation, so the membership check reuses $1 and $2.
    const grouped = memberOfGroup !== undefined;
    try {
      const [row] = await this.prepared<{ id: string | number; seq: string | number; sent_at: string | Date }>(
        grouped ? "parley_append_group" : "parley_append",
        grouped ? APPEND_TO_GROUP : APPEND,
        [message.conversationId, message.senderId, message.sender, message.toKind, message.toName, message.body, message.clientMsgId],
      );
      if (row === undefined) return undefined;
      return {
        record: { ...message, id: Number(row.id), seq: Number(row.seq), sentAt: new Date(row.sent_at) },
        duplicate: false,
      };
    } catch (err) {
      if (pgCode(err) !== UNIQUE_VIOLATION) throw err;
      const original = await this.findByClientMsgId(message.senderId, message.clientMsgId);
      if (original === undefined) throw err;
      return { record: original, duplicate: true };
    }
  }

  /**
   * Appends several messages of one sender to one conversation in one
   * statement (a group commit): the conversation's seq moves by their number
   * and they take consecutive seqs in the order given. All or nothing: a
   * `client_msg_id` used before makes the statement fail with a unique
   * violation, and the caller falls back to `append` one by one. Returns
   * undefined when the conversation is missing or the sender is not a member.
   */
  async appendMany(messages: NewMessage[], memberOfGroup?: string): Promise<MessageRecord[] | undefined> {
    const [first] = messages;
    const rows = await this.prepared<{ id: string | number; seq: string | number; sent_at: string | Date; client_msg_id: string }>(
      memberOfGroup !== undefined ? "parley_append_many_group" : "parley_append_many",
      memberOfGroup !== undefined ? APPEND_MANY_TO_GROUP : APPEND_MANY,
      [
        first.conversationId,
        messages.length,
        first.senderId,
        first.sender,
        first.toKind,
        first.toName,
        messages.map((m) => m.body),
        messages.map((m) => m.clientMsgId),
      ],
    );
    if (rows.length === 0) return undefined;
    const bySeq = [...rows].sort((a, b) => Number(a.seq) - Number(b.seq));
    return messages.map((message, i) => ({
      ...message,
      id: Number(bySeq[i].id),
      seq: Number(bySeq[i].seq),
      sentAt: new Date(bySeq[i].sent_at),
    }));
  }

  async findByClientMsgId(senderId: number, clientMsgId: string): Promise<MessageRecord | undefined> {
    const [row] = await this.db
      .select()
      .from(messages)
      .where(and(eq(messages.senderId, senderId), eq(messages.clientMsgId, clientMsgId)));
    return row && toRecord(row);
  }

  /** The page of `limit` messages before `beforeSeq` (0: the newest), ascending. */
  async history(conversationId: string, beforeSeq: number, limit: number): Promise<{ records: MessageRecord[]; hasMore: boolean }> {
    const rows = await this.db
      .select()
      .from(messages)
      .where(and(eq(messages.conversationId, conversationId), beforeSeq > 0 ? lt(messages.seq, beforeSeq) : undefined))
      .orderBy(desc(messages.seq))
      .limit(limit + 1);
    const hasMore = rows.length > limit;
    return { records: rows.slice(0, limit).reverse().map(toRecord), hasMore };
  }

  /** Messages with `afterSeq < seq < beforeSeq`, ascending; the newest (or oldest) `limit` of them when there are more. */
  async range(
    conversationId: string,
    afterSeq: number,
    beforeSeq: number,
    limit: number,
    keep: "newest" | "oldest" = "newest",
  ): Promise<MessageRecord[]> {
    const rows = await this.db
      .select()
      .from(messages)
      .where(
        and(
          eq(messages.conversationId, conversationId),
          gt(messages.seq, afterSeq),
          Number.isFinite(beforeSeq) ? lt(messages.seq, beforeSeq) : undefined,
        ),
      )
      .orderBy(keep === "newest" ? desc(messages.seq) : asc(messages.seq))
      .limit(limit);
    return (keep === "newest" ? rows.reverse() : rows).map(toRecord);
  }

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
  async positionsOf(userId: number): Promise<{ id: string; lastSeq: number; lastReadSeq: number }[]> {
    const rows = await queryRows<{ id: string; last_seq: string | number; last_read_seq: string | number }>(
      this.db,
      sql`SELECT c.id, c.last_seq, COALESCE(rc.last_read_seq, 0) AS last_read_seq ${participating(userId)}`,
    );
    return rows.map((r) => ({ id: r.id, lastSeq: Number(r.last_seq), lastReadSeq: Number(r.last_read_seq) }));
  }

  /** Whether the user may read and mark `conversationId`, and its last seq. */
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

  /** Moves the read cursor forward only, never past the conversation's last seq; returns where it is. */
  async markRead(userId: number, conversationId: string, seq: number): Promise<number> {
    const [row] = await queryRows<{ last_read_seq: string | number }>(
      this.db,
      sql`INSERT INTO read_cursors (user_id, conversation_id, last_read_seq)
          SELECT ${userId}::bigint, c.id, LEAST(${seq}::bigint, c.last_seq) FROM conversations c WHERE c.id = ${conversationId}
          ON CONFLICT (user_id, conversation_id) DO UPDATE
            SET last_read_seq = GREATEST(read_cursors.last_read_seq, EXCLUDED.last_read_seq), updated_at = now()
          RETURNING last_read_seq`,
    );
    return Number(row?.last_read_seq ?? 0);
  }

  /** Sets a new member's read cursor to the conversation's end, so that old history is not "unread". */
  async startReadingAtEnd(userId: number, conversationId: string): Promise<number> {
    return this.markRead(userId, conversationId, Number.MAX_SAFE_INTEGER);
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

function toRecord(row: typeof messages.$inferSelect): MessageRecord {
  return {
    id: row.id,
    conversationId: row.conversationId,
    seq: row.seq,
    senderId: row.senderId,
    sender: row.senderName,
    toKind: row.toKind,
    toName: row.toName,
    body: row.body,
    clientMsgId: row.clientMsgId,
    sentAt: row.sentAt,
  };
}
