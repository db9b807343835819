import { HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT } from "../lib/contract.js";
import { AppError } from "../lib/app-error.js";
import { userChannel } from "../lib/keys.js";
import type { Logger } from "../lib/logger.js";
import { quote } from "../lib/text.js";
import { checkName } from "../lib/validation.js";
import type { Bus, BusEvent } from "./bus.js";
import { BROADCAST_ID } from "./conversation-ids.js";
import type { ConversationRow, ConversationStore } from "./conversation-store.js";
import type { EventPublisher } from "./event-publisher.js";
import type { GroupStore, GroupView } from "./group-store.js";
import type { MessageRecord, MessageStore } from "./message-store.js";
import type { TargetInput, TargetResolver } from "./target-resolver.js";
import type { Presence } from "./presence.js";
import type { RateLimiter } from "./rate-limit.js";
import type { ReadCursorStore } from "./read-cursor-store.js";
import type { UserRef } from "../db/schema.js";

export interface ChatDomainDeps {
  messages: MessageStore;
  conversations: ConversationStore;
  readCursors: ReadCursorStore;
  targets: TargetResolver;
  groups: GroupStore;
  bus: Bus;
  events: EventPublisher;
  presence: Presence;
  typingLimiter: RateLimiter;
  log: Logger;
}

/**
 * The chat domain's calls other than sending (message-sender.ts) and
 * resuming (replay-planner.ts): history, the inbox, read cursors, groups,
 * typing and who is online. No gRPC in sight: it takes and returns plain
 * values and throws AppError.
 */
export class ChatDomain {
  private readonly log: Logger;

  constructor(private readonly deps: ChatDomainDeps) {
    this.log = deps.log.child({ component: "chat" });
  }

  /** A page of history, ascending; `limit` 0 means 50, and at most 200 are returned (design.md, GetHistory). */
  async history(user: UserRef, conversationId: string, beforeSeq: number, limit: number): Promise<{ records: MessageRecord[]; hasMore: boolean }> {
    await this.requireAccess(user, conversationId);
    if (!Number.isInteger(beforeSeq) || beforeSeq < 0) throw new AppError("invalid_argument", "before_seq must be 0 or more");
    if (!Number.isInteger(limit) || limit < 0) throw new AppError("invalid_argument", "limit must be 0 or more");
    const pageSize = Math.min(limit === 0 ? HISTORY_DEFAULT_LIMIT : limit, HISTORY_MAX_LIMIT);
    return this.deps.messages.history(conversationId, beforeSeq, pageSize);
  }

  /** The inbox: every conversation of the user, newest activity first, with unread counts. */
  conversations(user: UserRef): Promise<ConversationRow[]> {
    return this.deps.conversations.conversationsOf(user.id);
  }

  /** Moves the read cursor forward; returns where it stands (never backwards). */
  async markRead(user: UserRef, conversationId: string, seq: number): Promise<number> {
    if (!Number.isInteger(seq) || seq < 0) throw new AppError("invalid_argument", "seq must be 0 or more");
    await this.requireAccess(user, conversationId);
    return this.deps.readCursors.markRead(user.id, conversationId, seq);
  }

  async createGroup(user: UserRef, name: string): Promise<GroupView> {
    const group = await this.deps.groups.create(checkName(name, "group name"), user.id);
    this.log.info({ userId: user.id, group: group.name }, "group created");
    this.deps.events.membership(user.id, group.conversationId, true, 0);
    return group;
  }

  async joinGroup(user: UserRef, name: string): Promise<GroupView> {
    // The join also starts the read cursor at the group's end: history before joining is readable, not unread.
    const { joined, lastSeq, ...group } = await this.deps.groups.join(checkName(name, "group name"), user.id);
    // Joining again changes nothing: above all, it must not mark the group read.
    if (!joined) return group;
    this.deps.events.membership(user.id, group.conversationId, true, lastSeq);
    return group;
  }

  async leaveGroup(user: UserRef, name: string): Promise<GroupView> {
    const group = await this.deps.groups.leave(checkName(name, "group name"), user.id);
    this.deps.events.membership(user.id, group.conversationId, false, 0);
    return group;
  }

  listGroups(user: UserRef, query: string, mine: boolean): Promise<GroupView[]> {
    return this.deps.groups.list(user.id, query ?? "", mine);
  }

  /** Who peers were told is online, cluster-wide (presence.ts). */
  onlineUsers(): Promise<string[]> {
    return this.deps.presence.onlineUsernames();
  }

  /** Typing is ephemeral: never stored, dropped when over the rate, and not fanned out to broadcast. */
  async typing(user: UserRef, to: TargetInput | undefined): Promise<void> {
    if (!(await this.deps.typingLimiter.take(String(user.id)))) return;
    const target = await this.deps.targets.resolve(user, to);
    if (target.kind === "broadcast") return;
    if (target.kind === "group" && (await this.deps.conversations.access(user.id, target.conversationId)).access !== "ok") {
      throw new AppError("permission_denied", `not a member of group ${quote(target.toName)}`);
    }
    const event: BusEvent = {
      type: "typing",
      from: user.username,
      fromUserId: user.id,
      conversationId: target.conversationId,
      toKind: target.kind,
      toName: target.toName,
    };
    // A DM's typing goes to the recipient alone; a group's to its channel (the hub does not echo it to the typer).
    const channels = target.recipientId !== undefined ? [userChannel(target.recipientId)] : target.channels;
    await Promise.all(channels.map((channel) => this.deps.bus.publish(channel, event)));
  }

  /** Group and broadcast conversations a stream must listen to (its DMs arrive on the user's own channel). */
  async followedConversations(user: UserRef): Promise<string[]> {
    return [BROADCAST_ID, ...(await this.deps.groups.conversationsOf(user.id))];
  }

  private async requireAccess(user: UserRef, conversationId: string): Promise<void> {
    if (typeof conversationId !== "string" || conversationId === "") {
      throw new AppError("invalid_argument", "conversation_id is required");
    }
    const { access } = await this.deps.conversations.access(user.id, conversationId);
    if (access === "not_found") throw new AppError("not_found", `no conversation ${quote(conversationId)}`);
    if (access === "forbidden") throw new AppError("permission_denied", `not a member of conversation ${quote(conversationId)}`);
  }
}
