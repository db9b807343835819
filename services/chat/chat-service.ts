import { AppError } from "../lib/errors.js";
import { conversationChannel, userChannel } from "../lib/keys.js";
import type { Logger } from "../lib/logger.js";
import { codePoints, hasNul, quote } from "../lib/text.js";
import { checkName } from "../lib/validation.js";
import { AppendBatcher, type AppendResult } from "./append-batcher.js";
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

/** A failed publish is tried again after this long (ms). */
const PUBLISH_RETRY_MS = 250;

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
  /** Sends committing now, by `<sender id>|<client_msg_id>`: a retry that arrives meanwhile waits for the original. */
  private readonly committing = new Map<string, Promise<MessageRecord>>();
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
   *
   * Idempotent: a `client_msg_id` the sender used before answers with the
   * original message, whatever changed since (the body, the target, the rate
   * limit, the sender's membership), and costs no rate-limit point. Only the
   * id itself must be valid. To keep the hot path cheap, the original is
   * looked up only when a send is about to be refused; a retry that passes
   * every check is found by the insert's unique violation, and gives its
   * point back. A send whose outcome is unknown rejects with `unavailable`.
   */
  async submit(user: UserRef, input: SendInput): Promise<{ committed: Promise<MessageRecord> }> {
    const clientMsgId = checkClientMsgId(input.clientMsgId);
    const key = `${user.id}|${clientMsgId}`;
    // The same id still committing on this pod (a retry sent before the ack): its original is the answer.
    const earlier = this.committing.get(key);
    if (earlier !== undefined) {
      const original = await earlier.catch(() => undefined);
      if (original !== undefined) return { committed: Promise.resolve(original) };
    }
    const attempt = { tookPoint: false };
    let routed: { message: NewMessage; channels: string[] };
    try {
      routed = await this.route(user, clientMsgId, input, attempt);
    } catch (err) {
      return { committed: Promise.resolve(await this.originalOr(err, user.id, clientMsgId, attempt.tookPoint)) };
    }
    const committed = this.commit(routed.message, routed.channels);
    this.inflight.add(committed);
    this.committing.set(key, committed);
    void committed
      .catch(() => undefined)
      .finally(() => {
        this.inflight.delete(committed);
        if (this.committing.get(key) === committed) this.committing.delete(key);
      });
    return { committed };
  }

  /** Resolves once the sends under way have finished (the drain waits for them). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  /** Checks the body, takes a rate-limit point (noted in `attempt`) and finds the conversation. */
  private async route(
    user: UserRef,
    clientMsgId: string,
    input: SendInput,
    attempt: { tookPoint: boolean },
  ): Promise<{ message: NewMessage; channels: string[] }> {
    const body = checkBody(input.body);
    const to = input.to ?? {};
    if (!(await this.deps.sendLimiter.take(String(user.id)))) {
      throw new AppError("resource_exhausted", "rate limit: too many messages, slow down");
    }
    attempt.tookPoint = true;
    const base = { senderId: user.id, sender: user.username, body, clientMsgId };
    if (to.username) {
      const recipient = await this.findUser(to.username);
      // The DM's conversation row is created with its first message (MessageStore.append).
      return {
        message: { ...base, conversationId: directId(user.id, recipient.id), toKind: "direct", toName: recipient.username },
        channels: [...new Set([user.id, recipient.id])].map(userChannel),
      };
    }
    if (to.group) {
      const conversationId = groupConversationId(checkName(to.group, "group name"));
      // The name as created, not as this sender typed it; undefined when there is no such group.
      const name = await this.deps.groups.nameOf(conversationId);
      if (name === undefined) throw new AppError("not_found", `no group named ${quote(to.group)}`);
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
    let stored: AppendResult;
    try {
      stored = await this.appender.append(message, message.toKind === "group" ? message.conversationId : undefined);
    } catch (err) {
      throw this.outcomeUnknown(err, message);
    }
    if (stored === undefined) {
      // Not a member (any more): a retry of a message sent while a member still gets its original.
      const refused = new AppError("permission_denied", `not a member of group ${quote(message.toName)}`);
      return this.originalOr(refused, message.senderId, message.clientMsgId, true);
    }
    if (stored.duplicate) {
      // Awaited, so that the point is back before the client hears the answer and sends again.
      await this.deps.sendLimiter.refund(String(message.senderId));
      this.log.debug({ userId: message.senderId, clientMsgId: message.clientMsgId }, "duplicate send answered with the original");
    } else {
      this.publish(channels, { type: "message", message: stored.record });
    }
    return stored.record;
  }

  /**
   * A send is about to be refused with `err`. If it retries a message already
   * stored, the original is the answer (and the rate-limit point it took, if
   * any, is given back); otherwise `err` is thrown. Errors that are not a
   * refusal (a dependency down) are thrown as they are.
   */
  private async originalOr(err: unknown, senderId: number, clientMsgId: string, tookPoint: boolean): Promise<MessageRecord> {
    if (!(err instanceof AppError) || err.kind === "unavailable") throw err;
    let original: MessageRecord | undefined;
    try {
      original = await this.deps.messages.findByClientMsgId(senderId, clientMsgId);
    } catch (lookupErr) {
      // Unknown whether it is a retry: a retryable answer, never a refusal that may be wrong.
      throw this.outcomeUnknown(lookupErr, { senderId, clientMsgId });
    }
    if (original === undefined) throw err;
    if (tookPoint) await this.deps.sendLimiter.refund(String(senderId));
    this.log.debug({ userId: senderId, clientMsgId, refused: err.kind }, "retried send answered with the original");
    return original;
  }

  /** A send failed and nobody knows whether it was stored: the client must retry with the same id. */
  private outcomeUnknown(err: unknown, message: Pick<NewMessage, "senderId" | "clientMsgId">): AppError {
    if (err instanceof AppError) return err;
    this.log.warn({ err, userId: message.senderId, clientMsgId: message.clientMsgId }, "send failed with an unknown outcome");
    return Object.assign(new AppError("unavailable", "the message may not be stored: retry with the same client_msg_id"), { cause: err });
  }

  async history(user: UserRef, conversationId: string, beforeSeq: number, limit: number): Promise<{ records: MessageRecord[]; hasMore: boolean }> {
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
    // The join also starts the read cursor at the group's end: history before joining is readable, not unread.
    const { joined, lastSeq, ...group } = await this.deps.groups.join(checkName(name, "group name"), user.id);
    // Joining again changes nothing: above all, it must not mark the group read.
    if (!joined) return group;
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
    if (!(await this.deps.typingLimiter.take(String(user.id)))) return;
    const base = { from: user.username, fromUserId: user.id };
    if (to?.username) {
      const recipient = await this.findUser(to.username);
      const event: BusEvent = {
        type: "typing",
        ...base,
        conversationId: directId(user.id, recipient.id),
        toKind: "direct",
        toName: recipient.username,
      };
      await this.deps.bus.publish(userChannel(recipient.id), event);
    } else if (to?.group) {
      const group = await this.deps.groups.get(checkName(to.group, "group name"), user.id);
      if (!group.isMember) throw new AppError("permission_denied", `not a member of group ${quote(group.name)}`);
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

  /** Records the stream in presence; resolves once the user's peers were told, if they just came online. */
  async streamOpened(user: UserRef, streamId: string): Promise<void> {
    await this.deps.presence.add(user, streamId);
  }

  /** Forgets the stream; if it was the user's last one anywhere, presence announces them offline after its grace. */
  async streamClosed(user: UserRef, streamId: string): Promise<void> {
    await this.deps.presence.remove(user, streamId);
  }

  /**
   * Tells the user's peers (who share a DM or a group with them, not the whole
   * broadcast audience) that they came online or went offline. Presence calls
   * it once per change cluster-wide, so a publish that fails is retried: three
   * attempts in all, 250 ms apart, for the peers not reached yet. Rejects when
   * the last attempt fails.
   */
  async announcePresence(user: UserRef, online: boolean): Promise<void> {
    const attempts = 3;
    const event: BusEvent = { type: "presence", username: user.username, online };
    let pending: number[] | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        pending ??= await this.deps.messages.peersOf(user.id);
        const peers = pending;
        const results = await Promise.allSettled(peers.map((peer) => this.deps.bus.publish(userChannel(peer), event)));
        pending = peers.filter((_, i) => results[i].status === "rejected");
        const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
        if (failure === undefined) return;
        if (attempt >= attempts) throw failure.reason;
      } catch (err) {
        if (attempt >= attempts) throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  private async findUser(username: string): Promise<UserRef> {
    const user = await this.deps.messages.findUser(checkName(username, "username"));
    if (user === undefined) throw new AppError("not_found", `no user named ${quote(username)}`);
    return user;
  }

  private async requireAccess(user: UserRef, conversationId: string): Promise<void> {
    if (typeof conversationId !== "string" || conversationId === "") {
      throw new AppError("invalid_argument", "conversation_id is required");
    }
    const { access } = await this.deps.messages.access(user.id, conversationId);
    if (access === "not_found") throw new AppError("not_found", `no conversation ${quote(conversationId)}`);
    if (access === "forbidden") throw new AppError("permission_denied", `not a member of conversation ${quote(conversationId)}`);
  }

  /**
   * Fire and forget: what is published is already committed. A failed publish
   * of a message (a dropped Redis connection reconnects within a few hundred
   * ms) is tried once more; if that fails too, or a membership event is lost,
   * open streams still catch up from Postgres through their pod's stream
   * reconciler, within 5 s.
   */
  private publish(channels: string[], event: BusEvent): void {
    for (const channel of channels) {
      this.deps.bus.publish(channel, event).catch((err: unknown) => {
        // A membership event retried late could land after a newer one (a leave after a join); the reconciler repairs it.
        if (event.type !== "message") {
          this.log.warn({ err, channel, type: event.type }, "publish failed; open streams catch up from Postgres");
          return;
        }
        setTimeout(() => {
          this.deps.bus.publish(channel, event).catch((err: unknown) => {
            this.log.warn({ err, channel, type: event.type }, "publish failed twice; open streams catch up from Postgres");
          });
        }, PUBLISH_RETRY_MS).unref();
      });
    }
  }

  private publishMembership(user: UserRef, conversationId: string, joined: boolean, lastSeq: number): void {
    this.publish([userChannel(user.id)], { type: "membership", userId: user.id, conversationId, joined, lastSeq });
  }
}

/** `client_msg_id`: 1 to 64 characters (code points), without U+0000. */
function checkClientMsgId(value: unknown): string {
  if (typeof value !== "string" || value.length === 0 || codePoints(value) > MAX_CLIENT_MSG_ID) {
    throw new AppError("invalid_argument", `client_msg_id must be 1 to ${MAX_CLIENT_MSG_ID} characters`);
  }
  if (hasNul(value)) throw new AppError("invalid_argument", "client_msg_id must not contain U+0000");
  return value;
}

/**
 * `body`: not blank, at most 4096 bytes of UTF-8, without U+0000 (which
 * Postgres text cannot store). Checked here, after the duplicate check, not
 * at the transport: a retried send returns its original whatever the body is now.
 */
function checkBody(value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") throw new AppError("invalid_argument", "body is empty");
  if (Buffer.byteLength(value, "utf8") > MAX_BODY_BYTES) {
    throw new AppError("invalid_argument", `body is over ${MAX_BODY_BYTES} bytes of UTF-8`);
  }
  if (hasNul(value)) throw new AppError("invalid_argument", "body must not contain U+0000");
  return value;
}
