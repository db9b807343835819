import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { ConversationKind, Message, ServerFrame, type Target } from "../../gen/parley/chat/v1/chat.js";
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

/** Each committed message's `Message` encoding, made once (see `encodedMessage`). */
const encodings = new WeakMap<MessageRecord, Uint8Array>();

/**
 * The `Message` encoding of a stored message, made once per record and
 * reused: for the bus, the fan-out frame and the sender's `sent` ack alike.
 */
export function encodedMessage(record: MessageRecord): Uint8Array {
  let bytes = encodings.get(record);
  if (bytes === undefined) {
    bytes = Message.encode(toMessage(record)).finish();
    encodings.set(record, bytes);
  }
  return bytes;
}

// Field tags (field number << 3 | wire type 2) of chat.proto, for frames built around encoded bytes.
const SERVER_FRAME_MESSAGE = (2 << 3) | 2;
const SERVER_FRAME_SENT = (4 << 3) | 2;
const SERVER_FRAME_BATCH = (10 << 3) | 2;
const SENT_CLIENT_MSG_ID = (1 << 3) | 2;
const SENT_MESSAGE = (2 << 3) | 2;
const BATCH_FRAMES = (1 << 3) | 2;

/** `ServerFrame{message}` around an encoded `Message`: the same bytes `encodeFrame({message})` gives, without re-encoding. */
export const messageFrameOf = (message: Uint8Array): Buffer => Buffer.from(new BinaryWriter().uint32(SERVER_FRAME_MESSAGE).bytes(message).finish());

export const messageFrame = (record: MessageRecord) => messageFrameOf(encodedMessage(record));

/** `ServerFrame{sent{client_msg_id, message}}`, the ack of a `send` frame, around the committed message's encoding. */
export function sentFrame(clientMsgId: string, record: MessageRecord): Buffer {
  const writer = new BinaryWriter().uint32(SERVER_FRAME_SENT).fork();
  writer.uint32(SENT_CLIENT_MSG_ID).string(clientMsgId).uint32(SENT_MESSAGE).bytes(encodedMessage(record));
  return Buffer.from(writer.join().finish());
}

/**
 * `ServerFrame{batch{frames}}` around frames already encoded, in order: one
 * write for what a stream has queued (only for clients that set
 * `accept_batch`).
 */
export function batchFrame(frames: Uint8Array[]): Buffer {
  const writer = new BinaryWriter().uint32(SERVER_FRAME_BATCH).fork();
  for (const frame of frames) writer.uint32(BATCH_FRAMES).bytes(frame);
  return Buffer.from(writer.join().finish());
}

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
