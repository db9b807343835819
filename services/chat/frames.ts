import { ConversationKind, ServerFrame, type Message, type Target } from "../../gen/parley/chat/v1/chat.js";
import type { ConversationKindName } from "../db/schema.js";
import type { MessageRecord } from "./message-store.js";

/** The wire form of a stored message. */
export function toMessage(record: MessageRecord): Message {
  return {
    id: String(record.id),
    conversationId: record.conversationId,
    seq: record.seq,
    sender: record.sender,
    to: toTarget(record.toKind, record.toName),
    body: record.body,
    sentAt: record.sentAt,
    clientMsgId: record.clientMsgId,
  };
}

export function toTarget(kind: ConversationKindName, name: string): Target {
  if (kind === "direct") return { username: name };
  if (kind === "group") return { group: name };
  return { broadcast: true };
}

const CONVERSATION_KINDS: Record<ConversationKindName, ConversationKind> = {
  direct: ConversationKind.CONVERSATION_KIND_DIRECT,
  group: ConversationKind.CONVERSATION_KIND_GROUP,
  broadcast: ConversationKind.CONVERSATION_KIND_BROADCAST,
};

/** The wire enum of a conversation's kind. */
export const toConversationKind = (kind: ConversationKindName): ConversationKind => CONVERSATION_KINDS[kind];

/**
 * Server frames are encoded once and written as bytes: a message fanned out
 * to a thousand streams on this pod is serialized once, not a thousand times.
 */
export function encodeFrame(frame: ServerFrame): Buffer {
  return Buffer.from(ServerFrame.encode(frame).finish());
}

export const messageFrame = (record: MessageRecord) => encodeFrame({ message: toMessage(record) });

/** The `drain` frame: the stream is about to end; reconnect elsewhere and resume from your cursors. */
export const drainFrame = (reason: string) => encodeFrame({ drain: { reason } });

/**
 * The bytes-to-socket adapter of Connect and Subscribe (their
 * `responseSerialize`): a frame already encoded (see `encodeFrame`) is
 * written as it is, anything else is encoded here.
 */
export function serializeFrame(value: ServerFrame | Buffer): Buffer {
  return Buffer.isBuffer(value) ? value : encodeFrame(value);
}
