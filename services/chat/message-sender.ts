import { AppError } from "../lib/app-error.js";
import { InFlight } from "../lib/in-flight.js";
import type { Logger } from "../lib/logger.js";
import { quote } from "../lib/text.js";
import { checkBody, checkClientMsgId } from "../lib/validation.js";
import { AppendBatcher } from "./append-batcher.js";
import type { ChatMetrics } from "./chat-metrics.js";
import type { EventPublisher } from "./event-publisher.js";
import type { MessageRecord, MessageStore, NewMessage } from "./message-store.js";
import type { AppendResult } from "./message-store.js";
import type { RateLimiter } from "./rate-limit.js";
import type { UserRef } from "../db/schema.js";
import type { TargetInput, TargetResolver } from "./target-resolver.js";

export interface SendInput {
  clientMsgId: string;
  to: TargetInput | undefined;
  body: string;
}

export interface MessageSenderDeps {
  messages: MessageStore;
  targets: TargetResolver;
  events: EventPublisher;
  sendLimiter: RateLimiter;
  metrics?: ChatMetrics;
  log: Logger;
}

/**
 * The send path (design.md, guarantees 1 to 3): validate, route, take a
 * rate-limit point, commit through the group commit (append-batcher.ts), then
 * publish. Durable before acknowledged; a retried `client_msg_id` answers
 * with the original.
 */
export class MessageSender {
  private readonly log: Logger;
  private readonly inflight = new InFlight();
  /** Sends committing now, by `<sender id>|<client_msg_id>`: a retry that arrives meanwhile waits for the original. */
  private readonly committing = new Map<string, Promise<MessageRecord>>();
  private readonly appender: AppendBatcher;

  constructor(private readonly deps: MessageSenderDeps) {
    this.log = deps.log.child({ component: "send" });
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
    const arrivedAt = performance.now();
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
    const committed = this.commit(routed.message, routed.channels, arrivedAt);
    this.inflight.track(committed);
    this.committing.set(key, committed);
    void committed
      .catch(() => undefined)
      .finally(() => {
        if (this.committing.get(key) === committed) this.committing.delete(key);
      });
    return { committed };
  }

  /** Resolves once the sends under way have committed or failed (shutdown waits for them). */
  waitForSends(): Promise<void> {
    return this.inflight.settled();
  }

  /** Checks the body, takes a rate-limit point (noted in `attempt`) and finds the conversation. */
  private async route(
    user: UserRef,
    clientMsgId: string,
    input: SendInput,
    attempt: { tookPoint: boolean },
  ): Promise<{ message: NewMessage; channels: string[] }> {
    const body = checkBody(input.body);
    if (!(await this.deps.sendLimiter.take(String(user.id)))) {
      throw new AppError("resource_exhausted", "rate limit: too many messages, slow down");
    }
    attempt.tookPoint = true;
    const target = await this.deps.targets.resolve(user, input.to);
    return {
      message: {
        senderId: user.id,
        sender: user.username,
        body,
        clientMsgId,
        conversationId: target.conversationId,
        toKind: target.kind,
        toName: target.toName,
      },
      channels: target.channels,
    };
  }

  private async commit(message: NewMessage, channels: string[], arrivedAt: number): Promise<MessageRecord> {
    let stored: AppendResult;
    try {
      stored = await this.appender.append(message);
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
      this.deps.metrics?.committed(stored.record, arrivedAt);
      this.deps.events.message(channels, stored.record);
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
    return new AppError("unavailable", "the message may not be stored: retry with the same client_msg_id", { cause: err });
  }
}
