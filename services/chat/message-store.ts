import { and, asc, desc, eq, gt, lt, sql } from "drizzle-orm";
import { pgCode, queryRows, type Db, type PreparedQuery } from "../db/client.js";
import { messages, users, type ConversationKindName } from "../db/schema.js";
import { AppError } from "../lib/errors.js";

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
/** SQLSTATE class 22: the data itself cannot be stored (for example U+0000 in text). */
const DATA_EXCEPTION = "22";

/** The conversations a user takes part in (DMs, their groups, broadcast), as `c`, with their read cursor as `rc`. */
const participating = (userId: number) => sql`
  FROM conversations c
  LEFT JOIN groups g ON g.conversation_id = c.id
  LEFT JOIN read_cursors rc ON rc.conversation_id = c.id AND rc.user_id = ${userId}
  WHERE c.id = ${BROADCAST_ID}
     OR c.user_a = ${userId} OR c.user_b = ${userId}
     OR EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = g.id AND gm.user_id = ${userId})`;

/** How an append takes its seqs: `$conv` is the conversation id, `$sender` the sender's id, `$n` how many messages. */
type SeqSource = (p: { conv: string; sender: string; n: string }) => string;

/** Broadcast: the conversation exists from the first migration. */
const existing: SeqSource = ({ conv, n }) => `
    UPDATE conversations SET last_seq = last_seq + ${n}, last_message_at = now()
    WHERE id = ${conv}
    RETURNING last_seq`;

/** A group: only while the sender is a member; no row (and so no message) otherwise. */
const asMember: SeqSource = ({ conv, sender, n }) => `
    UPDATE conversations SET last_seq = last_seq + ${n}, last_message_at = now()
    WHERE id = ${conv} AND EXISTS (
      SELECT 1 FROM group_members gm JOIN groups g ON g.id = gm.group_id
      WHERE g.conversation_id = ${conv} AND gm.user_id = ${sender})
    RETURNING last_seq`;

/**
 * A DM: its first message creates the conversation in the same statement, so
 * a send that fails leaves no empty DM behind. The ids of the pair come from
 * the conversation id, `dm:<low user id>:<high user id>`.
 */
const upsertDirect: SeqSource = ({ conv, n }) => `
    INSERT INTO conversations (id, kind, user_a, user_b, last_seq, last_message_at)
    VALUES (${conv}, 'direct', split_part(${conv}, ':', 2)::bigint, split_part(${conv}, ':', 3)::bigint, ${n}, now())
    ON CONFLICT (id) DO UPDATE
      SET last_seq = conversations.last_seq + EXCLUDED.last_seq, last_message_at = EXCLUDED.last_message_at
    RETURNING last_seq`;

/**
 * The sender has read up to their own newest message (an implicit receipt):
 * the read cursor moves there in the same statement, never backwards.
 */
const readOwn = ({ conv, sender }: { conv: string; sender: string }) => `
  r AS (
    INSERT INTO read_cursors (user_id, conversation_id, last_read_seq)
    SELECT ${sender}, ${conv}, c.last_seq FROM c
    ON CONFLICT (user_id, conversation_id) DO UPDATE
      SET last_read_seq = GREATEST(read_cursors.last_read_seq, EXCLUDED.last_read_seq), updated_at = now()
  )`;

/**
 * Takes the conversation's next seq, inserts the message and moves the
 * sender's read cursor, in one statement.
 * $1 conversation, $2 sender id, $3 sender name, $4 to_kind, $5 to_name, $6 body, $7 client_msg_id.
 */
const appendStatement = (seqs: SeqSource) => {
  const p = { conv: "$1::text", sender: "$2::bigint", n: "1" };
  return `
  WITH c AS (${seqs(p)}
  ),
  m AS (
    INSERT INTO messages (conversation_id, seq, sender_id, sender_name, to_kind, to_name, body, client_msg_id)
    SELECT $1::text, c.last_seq, $2::bigint, $3::text, $4::text, $5::text, $6::text, $7::text FROM c
    RETURNING id, seq, sent_at
  ),${readOwn(p)}
  SELECT id, seq, sent_at FROM m`;
};

/**
 * N messages of one sender in one statement, seqs last_seq-N+1 … last_seq in
 * array order, and the sender's read cursor moved to the last of them.
 * $1 conversation, $2 N, $3 sender id, $4 sender name, $5 to_kind, $6 to_name, $7 bodies, $8 client_msg_ids.
 */
const appendManyStatement = (seqs: SeqSource) => {
  const p = { conv: "$1::text", sender: "$3::bigint", n: "$2::int" };
  return `
  WITH c AS (${seqs(p)}
  ),
  m AS (
    INSERT INTO messages (conversation_id, seq, sender_id, sender_name, to_kind, to_name, body, client_msg_id)
    SELECT $1::text, c.last_seq - $2::int + v.ord, $3::bigint, $4::text, $5::text, $6::text, v.body, v.client_msg_id
    FROM c, unnest($7::text[], $8::text[]) WITH ORDINALITY AS v(body, client_msg_id, ord)
    RETURNING id, seq, sent_at, client_msg_id
  ),${readOwn(p)}
  SELECT id, seq, sent_at, client_msg_id FROM m`;
};

/** The statements of each kind of conversation, by the name they are prepared under. */
const APPEND: Record<ConversationKindName, { name: string; text: string }> = {
  direct: { name: "parley_append_direct", text: appendStatement(upsertDirect) },
  group: { name: "parley_append_group", text: appendStatement(asMember) },
  broadcast: { name: "parley_append_broadcast", text: appendStatement(existing) },
};
const APPEND_MANY: Record<ConversationKindName, { name: string; text: string }> = {
  direct: { name: "parley_append_many_direct", text: appendManyStatement(upsertDirect) },
  group: { name: "parley_append_many_group", text: appendManyStatement(asMember) },
  broadcast: { name: "parley_append_many_broadcast", text: appendManyStatement(existing) },
};
const USER_CACHE_LIMIT = 10_000;

/** Postgres access for messages, conversations and read cursors. Every send is one round-trip. */
export class MessageStore {
  /** Usernames never change, so a lookup can be kept; unknown names are not cached (they may sign up). */
  private readonly userCache = new Map<string, UserRef>();

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
    const [row] = await this.db.select({ id: users.id, username: users.username }).from(users).where(sql`lower(${users.username}) = ${key}`);
    if (row) {
      if (this.userCache.size >= USER_CACHE_LIMIT) this.userCache.clear();
      this.userCache.set(key, row);
    }
    return row;
  }

  /**
   * Takes the next seq, inserts the message and moves the sender's read
   * cursor to it, in one statement, so all of it commits together or not at
   * all: the seq counter never skips. The row lock on the conversation orders
   * concurrent senders. A DM's first message creates the conversation. A
   * group message checks membership (`memberOfGroup`: the group's
   * conversation, which is the message's own). Returns undefined when the
   * sender is not a member (or the conversation is missing); returns the
   * original message when `(sender, client_msg_id)` was already used. Throws
   * AppError `invalid_argument` for text Postgres cannot store.
   */
  async append(message: NewMessage, memberOfGroup?: string): Promise<{ record: MessageRecord; duplicate: boolean } | undefined> {
    const statement = APPEND[memberOfGroup !== undefined ? "group" : message.toKind];
    try {
      const [row] = await this.prepared<{ id: string | number; seq: string | number; sent_at: string | Date }>(statement.name, statement.text, [
        message.conversationId,
        message.senderId,
        message.sender,
        message.toKind,
        message.toName,
        message.body,
        message.clientMsgId,
      ]);
      if (row === undefined) return undefined;
      return {
        record: { ...message, id: Number(row.id), seq: Number(row.seq), sentAt: new Date(row.sent_at) },
        duplicate: false,
      };
    } catch (err) {
      if (pgCode(err)?.startsWith(DATA_EXCEPTION)) throw unstorable(message, err);
      if (pgCode(err) !== UNIQUE_VIOLATION) throw err;
      const original = await this.findByClientMsgId(message.senderId, message.clientMsgId);
      if (original === undefined) throw err;
      return { record: original, duplicate: true };
    }
  }

  /**
   * Appends several messages of one sender to one conversation in one
   * statement (a group commit): the conversation's seq moves by their number,
   * they take consecutive seqs in the order given, and the sender's read
   * cursor moves to the last. All or nothing: when the statement fails (a
   * `client_msg_id` used before, text Postgres cannot store), nothing is
   * stored and the caller settles each message with `append`. Returns
   * undefined when the sender is not a member.
   */
  async appendMany(messages: NewMessage[], memberOfGroup?: string): Promise<MessageRecord[] | undefined> {
    const [first] = messages;
    const statement = APPEND_MANY[memberOfGroup !== undefined ? "group" : first.toKind];
    const rows = await this.prepared<{ id: string | number; seq: string | number; sent_at: string | Date; client_msg_id: string }>(
      statement.name,
      statement.text,
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

/** The refusal for a message whose text Postgres cannot keep, naming the field; the cause stays for the log. */
function unstorable(message: NewMessage, cause: unknown): AppError {
  const field = message.body.includes("\u0000") ? "body" : message.clientMsgId.includes("\u0000") ? "client_msg_id" : "message";
  return Object.assign(new AppError("invalid_argument", `${field} holds text that cannot be stored`), { cause });
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
