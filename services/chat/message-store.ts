import { and, desc, eq, lt } from "drizzle-orm";
import type { Db, PreparedQuery } from "../db/client.js";
import { messages, type ConversationKindName } from "../db/schema.js";
import { AppError, isDataException, isUniqueViolation, uniqueViolationDetail } from "../lib/app-error.js";
import { APPEND_BATCH } from "./append-statements.js";

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

/** What an append gives: the stored message (the original, `duplicate`, for a client_msg_id used before), or undefined when the sender is not a member. */
export type AppendResult = { record: MessageRecord; duplicate: boolean } | undefined;

/** Postgres access for messages: appends (one round-trip per send or batch), lookups by client_msg_id, history pages. */
export class MessageStore {
  /**
   * @param prepared runs the send's statement as a named prepared statement, so
   * Postgres parses and plans it once per connection rather than once per send.
   */
  constructor(
    private readonly db: Db,
    private readonly prepared: PreparedQuery,
    /** Told the size of every append statement that committed (the group commit's batch, for the metrics). */
    private readonly onAppended?: (messages: number) => void,
  ) {}

  /**
   * Appends one message (append-statements.ts): it takes the next seq of its
   * conversation, and the sender's read cursor moves to it, in one statement.
   * A DM's first message creates the conversation; a group message is stored
   * only while its sender is a member. Returns undefined when the sender is
   * not a member; returns the original message, `duplicate`, when
   * `(sender, client_msg_id)` was already used. Throws AppError
   * `invalid_argument` for text Postgres cannot store.
   */
  async append(message: NewMessage): Promise<AppendResult> {
    try {
      const [record] = await this.insert([message]);
      if (record !== undefined) return { record, duplicate: false };
      // Not a member (any more): a retry of a message sent while a member still gets its original.
      const original = await this.findByClientMsgId(message.senderId, message.clientMsgId);
      return original && { record: original, duplicate: true };
    } catch (err) {
      if (isDataException(err)) throw unstorable(message, err);
      if (!isUniqueViolation(err)) throw err;
      const original = await this.findByClientMsgId(message.senderId, message.clientMsgId);
      if (original === undefined) throw err;
      return { record: original, duplicate: true };
    }
  }

  /**
   * Appends messages of any senders to any conversations in one statement (a
   * group commit): each conversation's seq moves by its number of messages,
   * which take consecutive seqs in the order given. All or nothing: when the
   * statement fails (text Postgres cannot store, the same id twice in the
   * batch), nothing is stored and the caller settles each message with
   * `append`. A retry of an id stored before does not fail the batch: the
   * statement is tried again without it (up to MAX_RETRY_SKIPS times), and it
   * comes back undefined, for `append` to answer with its original. The result is aligned with `messages`: undefined where the
   * sender is not a member of the group.
   */
  async appendMany(messages: NewMessage[]): Promise<(MessageRecord | undefined)[]> {
    const results: (MessageRecord | undefined)[] = messages.map(() => undefined);
    let pending = messages.map((_, i) => i);
    // A retry of a stored id fails the statement; the retries Postgres names are left out (undefined,
    // for the caller to settle alone) and the rest tried again, a few times at most.
    for (let attempt = 1; ; attempt++) {
      try {
        const records = await this.insert(pending.map((i) => messages[i]));
        for (const [k, i] of pending.entries()) results[i] = records[k];
        return results;
      } catch (err) {
        const detail = uniqueViolationDetail(err);
        const retried = detail === undefined ? [] : pending.filter((i) => detail === storedIdDetail(messages[i]));
        // Two copies of one id in this batch (retried.length > 1) are not a retry of a stored one: one by one keeps their order.
        if (retried.length !== 1 || attempt === MAX_RETRY_SKIPS || pending.length === 1) throw err;
        pending = pending.filter((i) => !retried.includes(i));
      }
    }
  }

  /** The append statement (append-statements.ts) for `messages`. */
  private async insert(messages: NewMessage[]): Promise<(MessageRecord | undefined)[]> {
    const rows = await this.prepared<{
      id: string | number;
      seq: string | number;
      sent_at: string | Date;
      sender_id: string | number;
      client_msg_id: string;
    }>(APPEND_BATCH.name, APPEND_BATCH.text, [
      messages.map((m) => m.conversationId),
      messages.map((m) => m.senderId),
      messages.map((m) => m.sender),
      messages.map((m) => m.toKind),
      messages.map((m) => m.toName),
      messages.map((m) => m.body),
      messages.map((m) => m.clientMsgId),
    ]);
    if (rows.length > 0) this.onAppended?.(rows.length);
    const byKey = new Map(rows.map((row) => [`${row.sender_id}|${row.client_msg_id}`, row]));
    return messages.map((message) => {
      const row = byKey.get(`${message.senderId}|${message.clientMsgId}`);
      return row && { ...message, id: Number(row.id), seq: Number(row.seq), sentAt: new Date(row.sent_at) };
    });
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
    // A named statement: a reconnect storm runs this once per stream and conversation, and drizzle's
    // query building and Postgres' parsing and planning cost more than the index scan itself.
    const statement = keep === "newest" ? RANGE_NEWEST : RANGE_OLDEST;
    const rows = await this.prepared<MessageRow>(statement.name, statement.text, [
      conversationId,
      afterSeq,
      Number.isFinite(beforeSeq) ? beforeSeq : Number.MAX_SAFE_INTEGER,
      limit,
    ]);
    return (keep === "newest" ? rows.reverse() : rows).map(fromRow);
  }
}

/** The refusal for a message whose text Postgres cannot keep, naming the field; the cause stays for the log. */
function unstorable(message: NewMessage, cause: unknown): AppError {
  const field = message.body.includes("\u0000") ? "body" : message.clientMsgId.includes("\u0000") ? "client_msg_id" : "message";
  return new AppError("invalid_argument", `${field} holds text that cannot be stored`, { cause });
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

/** A `messages` row as a raw statement returns it: bigints as text (pg) or numbers (PGlite). */
interface MessageRow {
  id: string | number;
  conversation_id: string;
  seq: string | number;
  sender_id: string | number;
  sender_name: string;
  to_kind: ConversationKindName;
  to_name: string;
  body: string;
  client_msg_id: string;
  sent_at: string | Date;
}

function fromRow(row: MessageRow): MessageRecord {
  return {
    id: Number(row.id),
    conversationId: row.conversation_id,
    seq: Number(row.seq),
    senderId: Number(row.sender_id),
    sender: row.sender_name,
    toKind: row.to_kind,
    toName: row.to_name,
    body: row.body,
    clientMsgId: row.client_msg_id,
    sentAt: new Date(row.sent_at),
  };
}

const RANGE_COLUMNS = "id, conversation_id, seq, sender_id, sender_name, to_kind, to_name, body, client_msg_id, sent_at";
/** `range`'s statements: $1 conversation, $2 after seq, $3 before seq, $4 limit; the newest or the oldest first. */
const RANGE_NEWEST = {
  name: "parley_range_newest",
  text: `SELECT ${RANGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq DESC LIMIT $4`,
};
const RANGE_OLDEST = {
  name: "parley_range_oldest",
  text: `SELECT ${RANGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq ASC LIMIT $4`,
};

/** Statements tried in one `appendMany`, each without the retries the previous one failed on. */
const MAX_RETRY_SKIPS = 3;

/**
 * The detail Postgres gives when `message`'s `(sender_id, client_msg_id)` is
 * stored already (the unique index messages_sender_client_msg_id_key), word
 * for word: compared whole, so that no id has to be parsed out of it.
 */
const storedIdDetail = (message: NewMessage) => `Key (sender_id, client_msg_id)=(${message.senderId}, ${message.clientMsgId}) already exists.`;
