// What the page shows, in one place: the inbox, each conversation's messages
// (deduplicated by conversation and seq), the sends still pending, who is
// online, who is typing and the connection's state. Components re-render on
// `subscribe`; everything that changes state goes through a method here.
import type { Conversation, Message } from "../../../gen/es/parley/chat/v1/chat_pb.js";
import { type ChatKey, type ChatKind, keyOfConversation, keyOfMessage, kindOf } from "./chat-keys.js";

/** A send not yet acknowledged (`error` unset), or refused for good (`error` is the server's message). */
export interface PendingSend {
  clientMsgId: string;
  body: string;
  error?: string;
}

export interface Chat {
  key: ChatKey;
  kind: ChatKind;
  /** The peer's or group's spelling, or `broadcast`. */
  title: string;
  /** Unknown until the conversation's first message exists. */
  conversationId?: string;
  /** Ascending by seq, no seq twice. */
  messages: Message[];
  pending: PendingSend[];
  unread: number;
  /** The highest seq known (from the inbox, an ack, history or the stream): it orders the inbox; resuming and marking read use `streamSeq`. */
  lastSeq: bigint;
  /**
   * The seq up to which nothing newer is missing: the last one the Subscribe
   * stream delivered (it delivers each conversation in order without gaps),
   * or the top of the newest history page. It is the stream's cursor and the
   * furthest the read cursor is moved. An ack or the inbox may know a higher
   * seq while an earlier message is still on its way: resuming or marking
   * read from there would skip it.
   */
  streamSeq: bigint;
  lastReadSeq: bigint;
  /** Whether older messages exist before messages[0] (unknown until history is loaded). */
  hasMore: boolean;
  historyLoaded: boolean;
  /** Bumped at each new message: the inbox shows the newest activity first. */
  activity: number;
}

export type ConnectionState = { kind: "connecting" } | { kind: "online" } | { kind: "reconnecting"; inMs: number; reason: string };

export class ChatStore {
  readonly chats = new Map<ChatKey, Chat>();
  selected: ChatKey | undefined;
  online = new Set<string>();
  /** Who types in which chat, until when (ms since epoch). */
  typing = new Map<ChatKey, { from: string; until: number }>();
  connection: ConnectionState = { kind: "connecting" };
  private tick = 0;
  private readonly listeners = new Set<() => void>();

  constructor(readonly me: string) {}

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The inbox, newest activity first. */
  inbox(): Chat[] {
    return [...this.chats.values()].sort((a, b) => b.activity - a.activity);
  }

  /** The chat for `key`, created empty when it is new (a DM before its first message). */
  chat(key: ChatKey, title: string): Chat {
    let chat = this.chats.get(key);
    if (!chat) {
      chat = {
        key,
        kind: kindOf(key),
        title,
        messages: [],
        pending: [],
        unread: 0,
        lastSeq: 0n,
        streamSeq: 0n,
        lastReadSeq: 0n,
        hasMore: true,
        historyLoaded: false,
        activity: 0,
      };
      this.chats.set(key, chat);
    }
    return chat;
  }

  /** ListConversations' answer; its order (newest activity first) becomes the activity order. */
  setInbox(conversations: Conversation[]): void {
    conversations.forEach((c, i) => {
      const chat = this.chat(keyOfConversation(c.kind, c.title), c.title);
      chat.conversationId = c.id;
      if (c.lastSeq > chat.lastSeq) chat.lastSeq = c.lastSeq;
      if (c.lastReadSeq > chat.lastReadSeq) chat.lastReadSeq = c.lastReadSeq;
      chat.unread = chat.key === this.selected ? 0 : Number(c.unread);
      if (chat.activity <= 0) chat.activity = -i;
    });
    this.emit();
  }

  /**
   * Files a delivered or fetched message once (by conversation and seq); a
   * pending send with its client_msg_id is settled. Returns whether it was new.
   */
  addMessage(message: Message, live: boolean): boolean {
    const { key, title } = keyOfMessage(message.to, message.sender, this.me);
    const chat = this.chat(key, title);
    chat.conversationId = message.conversationId;
    if (message.sender.toLowerCase() === this.me.toLowerCase()) {
      chat.pending = chat.pending.filter((p) => p.clientMsgId !== message.clientMsgId);
    }
    const at = insertionPoint(chat.messages, message.seq);
    if (chat.messages[at]?.seq === message.seq) {
      this.emit();
      return false;
    }
    chat.messages.splice(at, 0, message);
    const newest = message.seq > chat.lastSeq;
    if (newest) chat.lastSeq = message.seq;
    if (live && newest) {
      chat.activity = ++this.tick + 1e12;
      const mine = message.sender.toLowerCase() === this.me.toLowerCase();
      if (!mine && key !== this.selected && message.seq > chat.lastReadSeq) chat.unread += 1;
      if (this.typing.get(key)?.from === message.sender) this.typing.delete(key);
    }
    this.emit();
    return true;
  }

  /** A message the Subscribe stream delivered (replayed or live): the conversation's cursor moves up to it. */
  delivered(message: Message): void {
    const { key, title } = keyOfMessage(message.to, message.sender, this.me);
    const chat = this.chat(key, title);
    if (message.seq > chat.streamSeq) chat.streamSeq = message.seq;
  }

  /**
   * The Subscribe cursors: per conversation, the last seq the stream
   * delivered (the stream replays what follows). A conversation the stream
   * never delivered has none, so the server replays it from the read cursor.
   */
  cursors(): { conversationId: string; seq: bigint }[] {
    const out: { conversationId: string; seq: bigint }[] = [];
    for (const chat of this.chats.values()) {
      if (chat.conversationId && chat.streamSeq > 0n) out.push({ conversationId: chat.conversationId, seq: chat.streamSeq });
    }
    return out;
  }

  addPending(key: ChatKey, title: string, pending: PendingSend): void {
    const chat = this.chat(key, title);
    chat.pending = [...chat.pending, pending];
    chat.activity = ++this.tick + 1e12;
    this.emit();
  }

  failPending(key: ChatKey, clientMsgId: string, error: string): void {
    const chat = this.chats.get(key);
    if (!chat) return;
    chat.pending = chat.pending.map((p) => (p.clientMsgId === clientMsgId ? { ...p, error } : p));
    this.emit();
  }

  /** A page from GetHistory, and whether there are more before it; `newest` for the first page (before_seq 0), which is gapless up to its top. */
  addHistory(key: ChatKey, messages: Message[], hasMore: boolean, newest = false): void {
    const chat = this.chats.get(key);
    if (!chat) return;
    for (const m of messages) this.addMessage(m, false);
    const top = messages.at(-1)?.seq;
    if (newest && top !== undefined && top > chat.streamSeq) chat.streamSeq = top;
    chat.hasMore = hasMore;
    chat.historyLoaded = true;
    this.emit();
  }

  select(key: ChatKey | undefined): void {
    this.selected = key;
    const chat = key ? this.chats.get(key) : undefined;
    if (chat) chat.unread = 0;
    this.emit();
  }

  markedRead(key: ChatKey, seq: bigint): void {
    const chat = this.chats.get(key);
    if (!chat || seq <= chat.lastReadSeq) return;
    chat.lastReadSeq = seq;
    chat.unread = 0;
    this.emit();
  }

  setOnline(usernames: string[]): void {
    this.online = new Set(usernames);
    this.emit();
  }

  presence(username: string, online: boolean): void {
    if (online) this.online.add(username);
    else this.online.delete(username);
    this.emit();
  }

  typingIn(key: ChatKey, from: string, until: number): void {
    this.typing.set(key, { from, until });
    this.emit();
  }

  setConnection(state: ConnectionState): void {
    this.connection = state;
    this.emit();
  }

  emit(): void {
    for (const listener of this.listeners) listener();
  }
}

/** Where seq belongs in an ascending list (binary search); equal to an existing index when present. */
function insertionPoint(messages: Message[], seq: bigint): number {
  let lo = 0;
  let hi = messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (messages[mid].seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
