import { sql } from "drizzle-orm";
import { bigint, check, index, pgTable, primaryKey, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";

const id = () => bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity();
const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();

export const users = pgTable(
  "users",
  {
    id: id(),
    /** As spelled at sign-up; lookups go through the lower() index. */
    username: text("username").notNull(),
    /** scrypt$N$r$p$salt$hash, see services/auth/passwords.ts */
    passwordHash: text("password_hash").notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("users_username_lower_key").on(sql`lower(${t.username})`)],
);

/** A user as every service refers to one: the id that keys their rows, and the name others see. */
export interface UserRef {
  id: number;
  username: string;
}

/**
 * The one rule of every write to `read_cursors`: a cursor moves forward only,
 * never back. Raw SQL, the conflict clause of an `INSERT INTO read_cursors
 * (user_id, conversation_id, last_read_seq)`.
 */
export const READ_CURSOR_FORWARD =
  "ON CONFLICT (user_id, conversation_id) DO UPDATE SET last_read_seq = GREATEST(read_cursors.last_read_seq, EXCLUDED.last_read_seq), updated_at = now()";

/** Sessions double as the login audit: created, last seen, revoked. */
export const sessions = pgTable(
  "sessions",
  {
    id: id(),
    userId: bigint("user_id", { mode: "number" })
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    /** SHA-256 of the token, hex; the token itself is never stored. */
    tokenHash: text("token_hash").notNull(),
    createdAt: createdAt(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    lastSeenAt: timestamp("last_seen_at", { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [uniqueIndex("sessions_token_hash_key").on(t.tokenHash), index("sessions_user_id_idx").on(t.userId)],
);

export const conversationKinds = ["direct", "group", "broadcast"] as const;
export type ConversationKindName = (typeof conversationKinds)[number];

/**
 * One row per DM pair, group and the broadcast channel. `last_seq` is the
 * per-conversation counter that send increments in the same transaction as
 * the message insert, which makes seqs gap-free.
 */
export const conversations = pgTable(
  "conversations",
  {
    /** `dm:<low user id>:<high user id>`, `group:<lower(name)>` or `broadcast`. */
    id: text("id").primaryKey(),
    kind: text("kind", { enum: conversationKinds }).notNull(),
    userA: bigint("user_a", { mode: "number" }).references(() => users.id, { onDelete: "cascade" }),
    userB: bigint("user_b", { mode: "number" }).references(() => users.id, { onDelete: "cascade" }),
    lastSeq: bigint("last_seq", { mode: "number" }).notNull().default(0),
    /** When the newest message was sent: the inbox is ordered by it. */
    lastMessageAt: timestamp("last_message_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [
    index("conversations_user_a_idx").on(t.userA),
    index("conversations_user_b_idx").on(t.userB),
    check("conversations_kind_check", sql`${t.kind} in ('direct', 'group', 'broadcast')`),
  ],
);

export const groups = pgTable(
  "groups",
  {
    id: id(),
    /** As spelled at creation; lookups go through the lower() index. */
    name: text("name").notNull(),
    /** `group:<lower(name)>`: names never change, so the id can be derived from one. */
    conversationId: text("conversation_id")
      .notNull()
      .references(() => conversations.id),
    createdBy: bigint("created_by", { mode: "number" }).references(() => users.id, { onDelete: "set null" }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("groups_name_lower_key").on(sql`lower(${t.name})`), uniqueIndex("groups_conversation_id_key").on(t.conversationId)],
);

export const groupMembers = pgTable(
  "group_members",
  {
    groupId: bigint("group_id", { mode: "number" })
      .notNull()
      .references(() => groups.id, { onDelete: "cascade" }),
    userId: bigint("user_id", { mode: "number" })
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    joinedAt: timestamp("joined_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.userId] }), index("group_members_user_id_idx").on(t.userId)],
);

/** How far each user has read each conversation: unread counts and the offline replay start here. */
export const readCursors = pgTable(
  "read_cursors",
  {
    userId: bigint("user_id", { mode: "number" })
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    conversationId: text("conversation_id")
      .notNull()
      .references(() => conversations.id, { onDelete: "cascade" }),
    lastReadSeq: bigint("last_read_seq", { mode: "number" }).notNull().default(0),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.conversationId] })],
);

export const messages = pgTable(
  "messages",
  {
    id: id(),
    conversationId: text("conversation_id")
      .notNull()
      .references(() => conversations.id, { onDelete: "cascade" }),
    seq: bigint("seq", { mode: "number" }).notNull(),
    senderId: bigint("sender_id", { mode: "number" })
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    /** Denormalised: usernames and group names never change, and history reads need them. */
    senderName: text("sender_name").notNull(),
    toKind: text("to_kind", { enum: conversationKinds }).notNull(),
    /** The recipient's username for a DM, the group's name, or empty for broadcast. */
    toName: text("to_name").notNull(),
    body: text("body").notNull(),
    clientMsgId: text("client_msg_id").notNull(),
    sentAt: timestamp("sent_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // History pages, the replay after a cursor and unread counts all walk this index.
    uniqueIndex("messages_conversation_seq_key").on(t.conversationId, t.seq),
    // Idempotent sends.
    uniqueIndex("messages_sender_client_msg_id_key").on(t.senderId, t.clientMsgId),
  ],
);
