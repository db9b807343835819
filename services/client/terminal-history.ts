import { ConversationKind, type Message, type Target } from "../../gen/parley/chat/v1/chat.js";
import type { ParleyApi } from "./api.js";
import { formatTarget } from "./terminal-format.js";

/** One page of history, ascending by seq, as GetHistory returns it. */
export interface HistoryPage {
  /** `bob`, `#rust` or `broadcast`. */
  label: string;
  messages: Message[];
  /** Whether older messages remain for /more. */
  hasMore: boolean;
}

/**
 * Finds the conversation id for a target from the inbox titles: a DM's title
 * is the peer's username and a group's is its name. A group the user is not
 * in falls back to its id (`group:<lowercased name>`), so the server answers
 * with the real reason (no such group, or not a member).
 */
async function resolveConversationId(api: ParleyApi, to: Target): Promise<string> {
  if (to.broadcast) return "broadcast";
  const conversations = await api.listConversations();
  if (to.username !== undefined) {
    const wanted = to.username.toLowerCase();
    const dm = conversations.find((c) => c.kind === ConversationKind.CONVERSATION_KIND_DIRECT && c.title.toLowerCase() === wanted);
    if (dm === undefined) throw new Error(`no conversation with ${to.username} yet`);
    return dm.id;
  }
  const wanted = (to.group ?? "").toLowerCase();
  const group = conversations.find((c) => c.kind === ConversationKind.CONVERSATION_KIND_GROUP && c.title.toLowerCase() === wanted);
  return group?.id ?? `group:${wanted}`;
}

/** Pages one conversation's history backwards: /history opens the newest page, /more goes further back. */
export class HistoryPager {
  private cursor: { conversationId: string; label: string; limit: number; beforeSeq: number; hasMore: boolean } | undefined;

  constructor(private readonly api: ParleyApi) {}

  async open(to: Target, limit: number): Promise<HistoryPage> {
    const conversationId = await resolveConversationId(this.api, to);
    this.cursor = undefined;
    return this.fetch({ conversationId, label: formatTarget(to), limit, beforeSeq: 0, hasMore: true });
  }

  /** The next older page; throws when there is nothing to page. */
  async more(): Promise<HistoryPage> {
    const cursor = this.cursor;
    if (cursor === undefined) throw new Error("nothing to page: start with /history");
    if (!cursor.hasMore) throw new Error(`no older messages in ${cursor.label}`);
    return this.fetch(cursor);
  }

  private async fetch(from: NonNullable<HistoryPager["cursor"]>): Promise<HistoryPage> {
    const page = await this.api.getHistory(from.conversationId, from.beforeSeq, from.limit);
    const oldest = page.messages[0]?.seq;
    this.cursor = { ...from, beforeSeq: oldest ?? from.beforeSeq, hasMore: page.hasMore && oldest !== undefined };
    return { label: from.label, messages: page.messages, hasMore: this.cursor.hasMore };
  }
}
