import { AppError } from "../lib/errors.js";
import { conversationChannel, userChannel } from "../lib/keys.js";
import type { Logger } from "../lib/logger.js";
import { checkName } from "../lib/validation.js";
import { AppendBatcher } from "./append-batcher.js";
import type { Bus, BusEvent } from "./bus.js";
import type { GroupStore, GroupView } from "./group-store.js";
import {
  BROADCAST_ID,
  directId,
  groupConversationId,
  type ConversationRow,
  type MessageRecord,
  type MessageStore,
  type NewMessage,
  type UserRef,
} from "./message-store.js";
import type { Presence } from "./presence.js";
import type { RateLimiter } from "./rate-limit.js";

/** Where a message goes: exactly one of the three. */
export interface TargetInput {
  username?: string | undefined;
  group?: string | undefined;
  broadcast?: boolean | undefined;
}

export interface SendInput {
  clientMsgId: string;
  to: TargetInput | undefined;
  body: string;
}

/** Bodies are at most this many bytes of UTF-8. */
export const MAX_BODY_BYTES = 4096;
export const MAX_CLIENT_MSG_ID = 64;
/**
 * The offline queue (no cursor) replays at most the newest this-many messages
 * per conversation; the client pages the rest. A replay from a cursor is not
 * capped: it is read in pages of this size.
 */
export const REPLAY_LIMIT = 500;
export const HISTORY_DEFAULT = 50;
export const HISTORY_MAX = 200;

export interface ChatServiceDeps {
  messages: MessageStore;
  groups: GroupStore;
  bus: Bus;
  presence: Presence;
  sendLimiter: RateLimiter;
  typingLimiter: RateLimiter;
  log: Logger;
}

/** One conversation's part of a resume: replay after `fromSeq`, up to `lastSeq`. */
export interface ReplayPlan {
  conversationId: string;
  fromSeq: number;
  lastSeq: number;
  /** True for the offline queue (no cursor): only the newest `REPLAY_LIMIT` are replayed. */
  capped: boolean;
}

/** The chat domain: validation, routing and storage, with no gRPC in sight. */
export class ChatService {
  private readonly log: Logger;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly appender: AppendBatcher;

  constructor(private readonly deps: ChatServiceDeps) {
    this.log = deps.log.child({ component: "chat" });
    this.appender = new AppendBatcher(deps.messages);
  }

  /** Commits the message, then publishes it. Durable before acknowledged; a retried id returns the original. */
  async send(user: UserRef, input: SendInput): Promise<MessageRecord> {
    return (await this.submit(user, input)).committed;
  }

  /**
   * Validates and routes a send, then queues it for commit and returns at
   * once: a stream can submit its next frame while this one commits, and
   * submissions from one sender to one conversation commit in order (batched,
   * see AppendBatcher). Rejects for a bad request; `committed` resolves once
   * the message is durable (or rejects).
   */
  async submit(user: UserRef, input: SendInput): Promise<{ committed: Promise<MessageRecord> }> {
    const { message, channels } = await this.route(user, input);
    const committed = this.commit(message, channels);
    this.inflight.add(committed);
    void committed.catch(() => undefined).finally(() => this.inflight.delete(committed));
    return { committed };
  }

  /** Resolves once the sends under way have finished (the drain waits for them). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  private async route(user: UserRef, input: SendInput): Promise<{ message: NewMessage; channels: string[] }> {
    const clientMsgId = checkClientMsgId(input.clientMsgId);
    const body = checkBody(input.body);
    const to = input.to ?? {};
    if (!this.deps.sendLimiter.take(`send:${user.id}`)) {
      throw new AppError("resource_exhausted", "rate limit: too many messages, slow down");
    }
    const base = { senderId: user.id, sender: user.username, body, clientMsgId };
    if (to.username) {
      const recipient = await this.findUser(to.username);
      const conversationId = await this.deps.messages.ensureDirect(user.id, recipient.id);
      return {
        message: { ...base, conversationId, toKind: "direct", toName: recipient.username },
        channels: [...new Set([user.id, recipient.id])].map(userChannel),
      };
    }
    if (to.group) {
      const conversationId = groupConversationId(checkName(to.group, "group name"));
      // The name as created, not as this sender typed it; undefined when there is no such group.
      const name = await this.deps.groups.nameOf(conversationId);
      if (name === undefined) throw new AppError("not_found", `no group named "${to.group}"`);
      return { message: { ...base, conversationId, toKind: "group", toName: name }, channels: [conversationChannel(conversationId)] };
    }
    if (to.broadcast === true) {
      return {
        message: { ...base, conversationId: BROADCAST_ID, toKind: "broadcast", toName: "" },
        channels: [conversationChannel(BROADCAST_ID)],
      };
    }
    throw new AppError("invalid_argument", "to must name a username, a group, or broadcast");
  }

  private async commit(message: NewMessage, channels: string[]): Promise<MessageRecord> {
    const stored = await this.appender.append(message, message.toKind === "group" ? message.conversationId : undefined);
    if (stored === undefined) throw new AppError("permission_denied", `not a member of group "${message.toName}"`);
    if (stored.duplicate) {
      this.log.debug({ userId: message.senderId, clientMsgId: message.clientMsgId }, "duplicate send answered with the original");
    } else {
      this.publish(channels, { type: "message", message: stored.record });
    }
    return stored.record;
  }

  async history(
    user: UserRef,
    conversationId: string,
    beforeSeq: number,
    limit: number,
  ): Promise<{ records: MessageRecord[]; hasMore: boolean }> {
    await this.requireAccess(user, conversationId);
    if (!Number.isInteger(beforeSeq) || beforeSeq < 0) throw new AppError("invalid_argument", "before_seq must be 0 or more");
    if (!Number.isInteger(limit) || limit < 0) throw new AppError("invalid_argument", "limit must be 0 or more");
    const pageSize = Math.min(limit === 0 ? HISTORY_DEFAULT : limit, HISTORY_MAX);
    return this.deps.messages.history(conversationId, beforeSeq, pageSize);
  }

  conversations(user: UserRef): Promise<ConversationRow[]> {
    return this.deps.messages.conversationsOf(user.id);
  }

  /** Moves the read cursor forward; returns where it stands (never backwards). */
  async markRead(user: UserRef, conversationId: string, seq: number): Promise<number> {
    if (!Number.isInteger(seq) || seq < 0) throw new AppError("invalid_argument", "seq must be 0 or more");
    await this.requireAccess(user, conversationId);
    return this.deps.messages.markRead(user.id, conversationId, seq);
  }

  async createGroup(user: UserRef, name: string): Promise<GroupView> {
    const group = await this.deps.groups.create(checkName(name, "group name"), user.id);
    this.log.info({ userId: user.id, group: group.name }, "group created");
    this.publishMembership(user, group.conversationId, true, 0);
    return group;
  }

  async joinGroup(user: UserRef, name: string): Promise<GroupView> {
    const { joined, ...group } = await this.deps.groups.join(checkName(name, "group name"), user.id);
    // Joining again changes nothing: above all, it must not mark the group read.
    if (!joined) return group;
    // History before joining is readable, but not "unread".
    const lastSeq = await this.deps.messages.startReadingAtEnd(user.id, group.conversationId);
    this.publishMembership(user, group.conversationId, true, lastSeq);
    return group;
  }

  async leaveGroup(user: UserRef, name: string): Promise<GroupView> {
    const group = await this.deps.groups.leave(checkName(name, "group name"), user.id);
    this.publishMembership(user, group.conversationId, false, 0);
    return group;
  }

  listGroups(user: UserRef, query: string, mine: boolean): Promise<GroupView[]> {
    return this.deps.groups.list(user.id, query ?? "", mine);
  }

  onlineUsers(): Promise<string[]> {
    return this.deps.presence.onlineUsernames();
  }

  /** Typing is ephemeral: never stored, dropped when over the rate, and not fanned out to broadcast. */
  async typing(user: UserRef, to: TargetInput | undefined): Promise<void> {
    if (!this.deps.typingLimiter.take(`typing:${user.id}`)) return;
    const base = { from: user.username, fromUserId: user.id };
    if (to?.username) {
      const recipient = await this.findUser(to.username);
      const event: BusEvent = { type: "typing", ...base, conversationId: directId(user.id, recipient.id), toKind: "direct", toName: recipient.username };
      await this.deps.bus.publish(userChannel(recipient.id), event);
    } else if (to?.group) {
      const group = await this.deps.groups.get(checkName(to.group, "group name"), user.id);
      if (!group.isMember) throw new AppError("permission_denied", `not a member of group "${group.name}"`);
      const event: BusEvent = { type: "typing", ...base, conversationId: group.conversationId, toKind: "group", toName: group.name };
      await this.deps.bus.publish(conversationChannel(group.conversationId), event);
    } else if (to?.broadcast !== true) {
      throw new AppError("invalid_argument", "typing needs a username or a group");
    }
  }

  /** Group and broadcast conversations a stream must listen to. */
  async followedConversations(user: UserRef): Promise<string[]> {
    return [BROADCAST_ID, ...(await this.deps.groups.conversationsOf(user.id))];
  }

  /**
   * What a resuming stream must replay: for each of the user's conversations,
   * everything after the client's cursor, or after the read cursor when the
   * client sent none (the offline queue). Cursors for conversations the user
   * is not in are ignored.
   */
  async replayPlan(user: UserRef, cursors: Map<string, number>): Promise<ReplayPlan[]> {
    const rows = await this.deps.messages.positionsOf(user.id);
    return rows.map((row) => {
      const cursor = cursors.get(row.id);
      return {
        conversationId: row.id,
        fromSeq: Math.min(cursor ?? row.lastReadSeq, row.lastSeq),
        lastSeq: row.lastSeq,
        capped: cursor === undefined,
      };
    });
  }

  /**
   * The next page of a replay, ascending: the messages after `afterSeq` up to
   * `plan.lastSeq`. For the offline queue, the one page of the newest
   * `REPLAY_LIMIT`; from a cursor, the oldest `REPLAY_LIMIT` not yet replayed.
   */
  replayPage(plan: ReplayPlan, afterSeq = plan.fromSeq): Promise<MessageRecord[]> {
    const { conversationId, lastSeq } = plan;
    return this.deps.messages.range(conversationId, afterSeq, lastSeq + 1, REPLAY_LIMIT, plan.capped ? "newest" : "oldest");
  }

  /** Every message a live stream missed between two seqs, oldest first, read in pages. */
  async missed(conversationId: string, afterSeq: number, beforeSeq: number): Promise<MessageRecord[]> {
    const found: MessageRecord[] = [];
    for (let from = afterSeq; from < beforeSeq - 1; ) {
      const page = await this.deps.messages.range(conversationId, from, beforeSeq, REPLAY_LIMIT, "oldest");
      found.push(...page);
      if (page.length < REPLAY_LIMIT) break;
      from = page[page.length - 1].seq;
    }
    return found;
  }

  /** Records the stream in presence and tells the user's peers when they come online. */
  async streamOpened(user: UserRef, streamId: string): Promise<void> {
    if (await this.deps.presence.add(user, streamId)) await this.announcePresence(user, true);
  }

  async streamClosed(user: UserRef, streamId: string): Promise<void> {
    if (await this.deps.presence.remove(user, streamId)) await this.announcePresence(user, false);
  }

  /** Presence goes to users who share a DM or a group with this one (not the whole broadcast audience). */
  async announcePresence(user: UserRef, online: boolean): Promise<void> {
    const peers = await this.deps.messages.peersOf(user.id);
    const event: BusEvent = { type: "presence", username: user.username, online };
    await Promise.all(peers.map((peer) => this.deps.bus.publish(userChannel(peer), event)));
  }

  private async findUser(username: string): Promise<UserRef> {
    const user = await this.deps.messages.findUser(checkName(username, "username"));
    if (user === undefined) throw new AppError("not_found", `no user named "${username}"`);
    return user;
  }

  private async requireAccess(user: UserRef, conversationId: string): Promise<void> {
    if (typeof conversationId !== "string" || conversationId === "") {
      throw new AppError("invalid_argument", "conversation_id is required");
    }
    const { access } = await this.deps.messages.access(user.id, conversationId);
    if (access === "not_found") throw new AppError("not_found", `no conversation "${conversationId}"`);
    if (access === "forbidden") throw new AppError("permission_denied", `not a member of conversation "${conversationId}"`);
  }

  /** Fire and forget: the message is committed; a receiver that misses the event gets it on resume. */
  private publish(channels: string[], event: BusEvent): void {
    for (const channel of channels) {
      this.deps.bus
        .publish(channel, event)
        .catch((err: unknown) => this.log.warn({ err, channel, type: event.type }, "publish failed; receivers catch up on resume"));
    }
  }

  private publishMembership(user: UserRef, conversationId: string, joined: boolean, lastSeq: number): void {
    this.publish([userChannel(user.id)], { type: "membership", userId: user.id, conversationId, joined, lastSeq });
  }
}

function checkClientMsgId(value: unknown): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_CLIENT_MSG_ID) {
    throw new AppError("invalid_argument", `client_msg_id must be 1 to ${MAX_CLIENT_MSG_ID} characters`);
  }
  return value;
}

function checkBody(value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") throw new AppError("invalid_argument", "body is empty");
  if (Buffer.byteLength(value, "utf8") > MAX_BODY_BYTES) {
    throw new AppError("invalid_argument", `body is over ${MAX_BODY_BYTES} bytes of UTF-8`);
  }
  return value;
}
