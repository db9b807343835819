// Which conversation a message, a typing event or an inbox entry belongs to,
// named from the user's side: a DM by its peer, a group by its name, or the
// broadcast. The key exists before the server's conversation id does (a DM
// gets its id from its first message), so the app files everything by it.
import type { Target } from "../../../gen/es/parley/chat/v1/chat_pb.js";
import { ConversationKind } from "../../../gen/es/parley/chat/v1/chat_pb.js";

export type ChatKind = "direct" | "group" | "broadcast";

/** `@peer` for a DM, `#group` for a group, `*` for the broadcast; names lower-cased (they are unique ignoring case). */
export type ChatKey = string;

export const BROADCAST_KEY: ChatKey = "*";

export function dmKey(peer: string): ChatKey {
  return `@${peer.toLowerCase()}`;
}

export function groupKey(name: string): ChatKey {
  return `#${name.toLowerCase()}`;
}

export function kindOf(key: ChatKey): ChatKind {
  if (key === BROADCAST_KEY) return "broadcast";
  return key.startsWith("@") ? "direct" : "group";
}

/** The Send/SendTyping target for a conversation with `title` (the peer's or group's spelling). */
export function targetOf(key: ChatKey, title: string): Target["kind"] {
  const kind = kindOf(key);
  if (kind === "broadcast") return { case: "broadcast", value: true };
  return kind === "direct" ? { case: "username", value: title } : { case: "group", value: title };
}

/** Where a delivered message belongs for user `me`: a DM I sent is filed under its recipient. */
export function keyOfMessage(to: Target | undefined, sender: string, me: string): { key: ChatKey; title: string } {
  const kind = to?.kind;
  if (kind?.case === "group") return { key: groupKey(kind.value), title: kind.value };
  if (kind?.case === "broadcast") return { key: BROADCAST_KEY, title: "broadcast" };
  const peer = sender.toLowerCase() === me.toLowerCase() && kind?.case === "username" ? kind.value : sender;
  return { key: dmKey(peer), title: peer };
}

/** The key of an inbox entry (ListConversations). */
export function keyOfConversation(kind: ConversationKind, title: string): ChatKey {
  if (kind === ConversationKind.BROADCAST) return BROADCAST_KEY;
  return kind === ConversationKind.GROUP ? groupKey(title) : dmKey(title);
}
