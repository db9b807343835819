import type { Counter, Gauge } from "prom-client";
import { type ConversationKindName, conversationKinds } from "../db/schema.js";
import { observeMany, type ServerMetrics } from "../lib/metrics.js";
import { conversationKindOf } from "./conversation-ids.js";
import type { MessageRecord } from "./message-store.js";
import type { RateLimiterFactory } from "./rate-limit.js";
import type { StreamCall } from "./stream-call.js";
import { type StreamEndReason, streamEndReason, STREAM_END_REASONS } from "./stream-end-reason.js";

/** The two streaming rpcs, as `parley_streams_open{rpc}` names them. */
export type StreamRpc = "connect" | "subscribe";

type Inc = ReturnType<Counter["labels"]>;

/** Message ids whose first delivery this pod has timed, in two generations of at most this many. */
const RECENT_FIRSTS = 1024;

/**
 * The chat service's parley_* metrics (lib/metrics.ts), as the chat code
 * reports them: every label is bound once here, from a fixed set (an rpc, a
 * conversation kind, an end reason), never from a user, a conversation or a
 * message. A frame costs an addition (deliveries are moved into their
 * counter before each scrape); a message, a few increments.
 */
export class ChatMetrics {
  private readonly open: Record<StreamRpc, ReturnType<Gauge["labels"]>>;
  private readonly ended: Record<StreamEndReason, Inc>;
  private readonly sentByKind: Record<ConversationKindName, Inc>;
  private readonly deliveredByKind: Record<ConversationKindName, Inc>;
  /** Deliveries not yet moved into their counters (beforeCollect): a fan-out adds to a number. */
  private readonly pendingDeliveries: Record<ConversationKindName, number> = { direct: 0, group: 0, broadcast: 0 };
  /** Direct messages already timed to their first delivery: a DM reaches a pod on two channels (sender's and recipient's). */
  private firsts = new Set<string>();
  private olderFirsts = new Set<string>();

  constructor(private readonly metrics: ServerMetrics) {
    this.open = { connect: metrics.streamsOpen.labels("connect"), subscribe: metrics.streamsOpen.labels("subscribe") };
    for (const gauge of Object.values(this.open)) gauge.set(0);
    this.ended = Object.fromEntries(STREAM_END_REASONS.map((r) => [r, metrics.streamsEnded.labels(r)])) as Record<StreamEndReason, Inc>;
    this.sentByKind = byKind((kind) => metrics.messagesSent.labels(kind));
    this.deliveredByKind = byKind((kind) => metrics.messagesDelivered.labels(kind));
    // Every series exists from the start, at 0, so that rate() and absent() see it before its first event.
    for (const counter of [...Object.values(this.ended), ...Object.values(this.sentByKind), ...Object.values(this.deliveredByKind)]) counter.inc(0);
    metrics.beforeCollect(() => {
      for (const kind of conversationKinds) {
        if (this.pendingDeliveries[kind] === 0) continue;
        this.deliveredByKind[kind].inc(this.pendingDeliveries[kind]);
        this.pendingDeliveries[kind] = 0;
      }
    });
  }

  /** A Connect or Subscribe call began: it counts as open until it ends, and then as ended for its reason. */
  streamOpened(rpc: StreamRpc, call: StreamCall): void {
    const open = this.open[rpc];
    open.inc();
    call.onClose(() => {
      open.dec();
      this.ended[streamEndReason(call.signal.reason)].inc();
    });
  }

  /**
   * A send committed a new message (not a retry answered with its original).
   * `arrivedAt` is when the send reached this pod, on `performance.now()`'s clock.
   */
  committed(record: MessageRecord, arrivedAt: number): void {
    this.sentByKind[record.toKind].inc();
    this.metrics.sendCommitSeconds.observe((performance.now() - arrivedAt) / 1000);
  }

  /**
   * A live message (not a replay) was handed to `streams` of this pod's
   * streams at once: each write's lag from the commit (`sent_at`, stamped by
   * Postgres), and the first write's per message and pod.
   */
  delivered(conversationId: string, sentAt: number, streams: number, seq: number): void {
    const kind = conversationKindOf(conversationId);
    this.pendingDeliveries[kind] += streams;
    const lagSeconds = Math.max(0, Date.now() - sentAt) / 1000;
    observeMany(this.metrics.fanoutLagSeconds, lagSeconds, streams);
    if (kind === "direct" && !this.firstTime(`${conversationId}#${seq}`)) return;
    this.metrics.sendFirstDeliverySeconds.observe(lagSeconds);
  }

  /** One append statement committed `messages` messages (the group commit's batch). */
  appended(messages: number): void {
    this.metrics.groupCommitBatchSize.observe(messages);
  }

  /** The bus connection dropped: live events may have been missed. */
  busGap(): void {
    this.metrics.busGaps.inc();
  }

  /** Whether the message `id` (conversation and seq) is seen here for the first time (among the last 1024 to 2048 direct messages). */
  private firstTime(id: string): boolean {
    if (this.firsts.has(id) || this.olderFirsts.has(id)) return false;
    if (this.firsts.size >= RECENT_FIRSTS) {
      this.olderFirsts = this.firsts;
      this.firsts = new Set();
    }
    this.firsts.add(id);
    return true;
  }
}

function byKind(bind: (kind: ConversationKindName) => Inc): Record<ConversationKindName, Inc> {
  return { direct: bind("direct"), group: bind("group"), broadcast: bind("broadcast") };
}

/**
 * `factory`'s limiters, each refusal counted in
 * `parley_rate_limited_total{action}`, the action being the limiter's name
 * (send, typing: fixed in main.ts).
 */
export function countRefusals(factory: RateLimiterFactory, metrics: ServerMetrics): RateLimiterFactory {
  return (name, rule) => {
    const limiter = factory(name, rule);
    const refused = metrics.rateLimited.labels(name);
    refused.inc(0);
    return {
      async take(key) {
        const allowed = await limiter.take(key);
        if (!allowed) refused.inc();
        return allowed;
      },
      refund: (key) => limiter.refund(key),
    };
  };
}
