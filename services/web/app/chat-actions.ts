// What the user does besides sending, as calls on the server that update the
// store: the inbox, opening a chat and paging its history back, marking read,
// typing, groups, and who is online.
import type { Group } from "../../../gen/es/parley/chat/v1/chat_pb.js";
import type { Api } from "./api.js";
import { type ChatKey, groupKey, targetOf } from "./chat-keys.js";
import type { ChatStore } from "./store.js";

/** A chat's read cursor goes to the server at most this often (ms); the page shows it read at once. */
const MARK_READ_EVERY_MS = 1_000;

/** GetHistory page size (the server's default is 50, its maximum 200). */
const PAGE = 50;
/** At most one SendTyping per chat per this many ms while the user types. */
const TYPING_EVERY_MS = 2_000;

export class ChatActions {
  private readonly lastTyping = new Map<ChatKey, number>();
  private readonly loading = new Set<ChatKey>();
  /** Chats whose read cursor goes to the server at the end of the current MARK_READ_EVERY_MS window. */
  private readonly markingSoon = new Set<ChatKey>();

  constructor(
    private readonly api: Api,
    private readonly store: ChatStore,
    private readonly now: () => number = Date.now,
  ) {}

  async refreshInbox(): Promise<void> {
    const { conversations } = await this.api.chat.listConversations({});
    this.store.setInbox(conversations);
    // A chat opened before its conversation was known (the inbox failed at load) gets its history now.
    const selected = this.store.selected ? this.store.chats.get(this.store.selected) : undefined;
    if (selected?.conversationId && !selected.historyLoaded) await this.loadOlder(selected.key);
  }

  async refreshOnline(): Promise<void> {
    const { usernames } = await this.api.chat.listOnlineUsers({});
    this.store.setOnline(usernames);
  }

  /** Shows the chat `key`, loading its newest page of history the first time. */
  async open(key: ChatKey, title: string): Promise<void> {
    const chat = this.store.chat(key, title);
    this.store.select(key);
    // A peer met since the last refresh: no presence frame told us about them yet.
    this.refreshOnline().catch(() => undefined);
    if (!chat.historyLoaded) await this.loadOlder(key);
    await this.markRead(key);
  }

  /** The page before the oldest message shown (GetHistory before_seq; 0 = the newest page). No-op while one loads or none is left. */
  async loadOlder(key: ChatKey): Promise<void> {
    const chat = this.store.chats.get(key);
    if (!chat?.conversationId || this.loading.has(key) || (chat.historyLoaded && !chat.hasMore)) return;
    this.loading.add(key);
    try {
      const beforeSeq = chat.historyLoaded ? (chat.messages[0]?.seq ?? 0n) : 0n;
      const page = await this.api.chat.getHistory({ conversationId: chat.conversationId, beforeSeq, limit: PAGE });
      this.store.addHistory(key, page.messages, page.hasMore, beforeSeq === 0n);
    } finally {
      this.loading.delete(key);
    }
  }

  /** Moves the read cursor to the newest message shown without a gap before it, when the page is visible. */
  async markRead(key: ChatKey): Promise<void> {
    const chat = this.store.chats.get(key);
    if (!chat?.conversationId || this.store.selected !== key || document.visibilityState !== "visible") return;
    const seq = chat.streamSeq;
    if (seq <= chat.lastReadSeq) return;
    // Shown read at once; told to the server at most once per window per chat (a busy chat is one MarkRead a second,
    // not one per message), with the newest seq at the window's end.
    this.store.markedRead(key, seq);
    if (this.markingSoon.has(key)) return;
    this.markingSoon.add(key);
    setTimeout(() => {
      this.markingSoon.delete(key);
      const latest = this.store.chats.get(key);
      if (latest?.conversationId && latest.lastReadSeq > seq) {
        this.api.chat.markRead({ conversationId: latest.conversationId, seq: latest.lastReadSeq }).catch(() => undefined);
      }
    }, MARK_READ_EVERY_MS);
    await this.api.chat.markRead({ conversationId: chat.conversationId, seq });
  }

  /** Tells the chat's members that the user types, at most once per 2 s per chat; errors are ignored (it is a hint). */
  typing(key: ChatKey, title: string): void {
    const at = this.now();
    if (at - (this.lastTyping.get(key) ?? Number.NEGATIVE_INFINITY) < TYPING_EVERY_MS) return;
    this.lastTyping.set(key, at);
    this.api.chat.sendTyping({ to: { kind: targetOf(key, title) } }).catch(() => undefined);
  }

  /** Groups whose name contains `query` (ignoring case), all when empty. */
  async listGroups(query: string): Promise<Group[]> {
    return (await this.api.chat.listGroups({ query })).groups;
  }

  async createGroup(name: string): Promise<void> {
    const { group } = await this.api.chat.createGroup({ name });
    if (group) await this.openGroup(group);
  }

  async joinGroup(name: string): Promise<void> {
    const { group } = await this.api.chat.joinGroup({ name });
    if (group) await this.openGroup(group);
  }

  async leaveGroup(name: string): Promise<void> {
    await this.api.chat.leaveGroup({ name });
    const key = groupKey(name);
    this.store.chats.delete(key);
    if (this.store.selected === key) this.store.select(undefined);
    else this.store.emit();
  }

  private async openGroup(group: Group): Promise<void> {
    const key = groupKey(group.name);
    this.store.chat(key, group.name).conversationId = group.conversationId;
    await this.open(key, group.name);
  }
}
