import type { ConversationKindName } from "../db/schema.js";
// Conversation ids: one string per conversation, the key of its messages, its
// read cursors and its bus channel (services/db/schema.ts, conversations.id).

/** The one broadcast conversation, created by the first migration. */
export const BROADCAST_ID = "broadcast";

/** A DM's id, `dm:<low user id>:<high user id>`: the same for both users, whoever sends first. */
export const directConversationId = (a: number, b: number): string => (a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`);

/** A group's id, `group:<lower-case name>`: names are unique regardless of case. */
export const groupConversationId = (name: string): string => `group:${name.toLowerCase()}`;

/** The kind of conversation an id names, from its form (above). */
export function conversationKindOf(conversationId: string): ConversationKindName {
  if (conversationId.startsWith("dm:")) return "direct";
  return conversationId === BROADCAST_ID ? "broadcast" : "group";
}
