// Stored history as a client reads it, for checking it against what was
// acknowledged and what receivers got.
import type { ExecutionContext } from "ava";
import type { Message } from "../../gen/parley/chat/v1/chat.js";
import type { ParleyApi } from "../../services/client/api.js";

/**
 * The whole history of a conversation, ascending, paged back with GetHistory
 * 200 at a time as a client would. The delivery, drain, fault and restart tests
 * compare all of it (no gap, each send once, nothing acknowledged lost), and
 * one page holds at most 200 messages, so they must not read just the newest.
 */
export async function fullHistory(api: ParleyApi, conversationId: string): Promise<Message[]> {
  const all: Message[] = [];
  let beforeSeq = 0;
  for (;;) {
    const page = await api.getHistory(conversationId, beforeSeq, 200);
    all.unshift(...page.messages);
    if (!page.hasMore || page.messages.length === 0) return all;
    beforeSeq = page.messages[0].seq;
  }
}

/** `from`, `from + 1`, … `to` (empty when `to < from`): the seqs a gap-free conversation holds. */
export const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/**
 * Asserts what every fault test asserts of a stored conversation: seqs 1…n
 * with no gap, and each (sender, client_msg_id) once. Returns the messages by
 * id, to check acknowledged sends against.
 */
export function assertIntact(t: ExecutionContext, history: Message[]): Map<string, Message> {
  t.deepEqual(
    history.map((m) => m.seq),
    range(1, history.length),
    "the stored seqs have no gap",
  );
  t.is(new Set(history.map((m) => `${m.sender}/${m.clientMsgId}`)).size, history.length, "each send is stored once");
  return new Map(history.map((m) => [m.id, m]));
}
