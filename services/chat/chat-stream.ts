import { randomUUID } from "node:crypto";
import { type Clock, systemClock } from "../lib/clock.js";
import type { ErrorKind } from "../lib/app-error.js";
import type { Logger } from "../lib/logger.js";
import { batchFrame, messageFrame } from "./frames.js";
import type { UserRef } from "../db/schema.js";
import type { MessageRecord } from "./message-store.js";
import { Sequencer, type Sequenced } from "./sequencer.js";

/**
 * Where a stream's encoded frames go, and who ends it: the call's owner
 * (stream-call.ts) implements this over a grpc-js call.
 */
export interface FrameSink {
  /** False when the transport's buffer is full: wait for `onDrain` before writing more. */
  write(frame: Buffer): boolean;
  onDrain(callback: () => void): void;
  /**
   * Ends the call: OK without `kind`, else with that error's status, after
   * `lastFrame` (written even when the buffer is full). Only the first end counts.
   */
  end(kind?: ErrorKind, reason?: string, lastFrame?: Buffer): void;
  /** Called once when the call ends, for whatever reason (this stream, the client, the owner). */
  onClose(callback: () => void): void;
}

/**
 * The most frames one `batch` frame holds: about 30 KB of typical messages,
 * and under 600 KB at the 4 KiB body limit, well inside any client's 4 MiB
 * receive limit.
 */
const MAX_BATCH_FRAMES = 128;

interface LiveMessage extends Sequenced {
  frame: Buffer;
}

export interface ChatStreamOptions {
  user: UserRef;
  sessionId: number;
  sink: FrameSink;
  /** Frames queued beyond the transport's buffer before the stream is ended as too slow. */
  queueLimit: number;
  /**
   * The client set `accept_batch`: frames queued in one event-loop turn go
   * out as one `batch` frame (one write), not one write each. Default false:
   * grpcurl and older clients see single frames.
   */
  acceptBatch?: boolean;
  /** Loads messages a live stream missed, for the sequencer's gaps. */
  loadRange: (conversationId: string, afterSeq: number, beforeSeq: number) => Promise<MessageRecord[]>;
  log: Logger;
  /** Times the sequencer's gap wait and stamps membership changes. Default the system clock. */
  clock?: Clock;
}

/**
 * One open Connect or Subscribe stream on this pod. It owns a bounded write
 * queue that honours the transport's backpressure, buffers live messages
 * until the replay is over, and delivers each message once, in seq order.
 */
export class ChatStream {
  readonly id = randomUUID();
  readonly user: UserRef;
  readonly sessionId: number;
  readonly log: Logger;
  /** Group and broadcast conversations this stream follows; kept by the hub. */
  readonly conversations = new Set<string>();
  private readonly sink: FrameSink;
  private readonly queueLimit: number;
  private readonly queue: Buffer[] = [];
  private readonly sequencer: Sequencer<LiveMessage>;
  /** Live messages that arrived during the replay; undefined once caught up. */
  private beforeCaughtUp: LiveMessage[] | undefined = [];
  private blocked = false;
  private readonly acceptBatch: boolean;
  /** A batching stream's write is scheduled for the end of this event-loop turn. */
  private flushScheduled = false;
  private drainWaiters: (() => void)[] = [];
  private endListeners: (() => void)[] = [];
  private ended = false;
  /** Conversations being loaded from Postgres by `catchUp`. */
  private readonly catchingUp = new Set<string>();
  private readonly membershipChanges = new Map<string, number>();
  private readonly clock: Clock;

  constructor(options: ChatStreamOptions) {
    this.user = options.user;
    this.sessionId = options.sessionId;
    this.sink = options.sink;
    this.queueLimit = options.queueLimit;
    this.acceptBatch = options.acceptBatch ?? false;
    this.clock = options.clock ?? systemClock;
    this.log = options.log.child({ streamId: this.id, userId: options.user.id, username: options.user.username });
    this.sink.onClose(() => this.finish());
    this.loadMissed = async (conversationId, afterSeq, beforeSeq) =>
      (await options.loadRange(conversationId, afterSeq, beforeSeq)).map((record) => ({
        conversationId,
        seq: record.seq,
        frame: messageFrame(record),
      }));
    this.sequencer = new Sequencer<LiveMessage>(
      (item) => this.push(item.frame),
      this.loadMissed,
      (err) => this.cannotLoad(err),
      { clock: this.clock },
    );
  }

  private readonly loadMissed: (conversationId: string, afterSeq: number, beforeSeq: number) => Promise<LiveMessage[]>;

  private cannotLoad(err: unknown): void {
    this.log.warn({ err }, "could not load missed messages; ending the stream so the client resumes");
    this.end("unavailable", "could not load missed messages, resume from your cursors");
  }

  /**
   * Delivers what was committed in a conversation since the stream's position
   * there. Called once the bus subscription for a newly joined group is in
   * place: anything published before that was not heard, but is in Postgres.
   */
  catchUp(conversationId: string): void {
    if (this.ended || this.catchingUp.has(conversationId)) return;
    this.catchingUp.add(conversationId);
    this.loadMissed(conversationId, this.sequencer.position(conversationId), Number.POSITIVE_INFINITY)
      .then(
        (items) => {
          for (const item of items) this.offerMessage(item.conversationId, item.seq, item.frame);
        },
        (err: unknown) => this.cannotLoad(err),
      )
      .finally(() => this.catchingUp.delete(conversationId));
  }

  /** The highest seq this stream has delivered in the conversation (0: none). */
  position(conversationId: string): number {
    return this.sequencer.position(conversationId);
  }

  /** True once the replay is over and the stream is live. */
  get isCaughtUp(): boolean {
    return this.beforeCaughtUp === undefined;
  }

  /** When (epoch ms) the stream last followed or unfollowed the conversation; the reconciler leaves newer changes alone. */
  membershipChangedAt(conversationId: string): number {
    return this.membershipChanges.get(conversationId) ?? 0;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Queues a frame that is not a message (ready, acks, presence, typing, pong). */
  send(frame: Buffer): void {
    this.push(frame);
  }

  /** A live message, encoded once by the hub for every stream that gets it. */
  offerMessage(conversationId: string, seq: number, frame: Buffer): void {
    if (this.ended) return;
    const item = { conversationId, seq, frame };
    if (this.beforeCaughtUp === undefined) {
      this.sequencer.offer(item);
      return;
    }
    this.beforeCaughtUp.push(item);
    if (this.beforeCaughtUp.length > this.queueLimit) this.tooSlow();
  }

  /** Writes one replayed frame, waiting while the transport is full, so a long replay cannot flood memory. */
  async replay(conversationId: string, seq: number, frame: Buffer): Promise<void> {
    if (seq <= this.sequencer.position(conversationId)) return;
    this.push(frame);
    this.sequencer.advance(conversationId, seq);
    if (this.blocked && !this.ended) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  /** The replay is over at these positions: deliver what arrived meanwhile, then go live. */
  caughtUp(positions: Map<string, number>, frame: Buffer): void {
    for (const [conversationId, seq] of positions) this.sequencer.advance(conversationId, seq);
    this.push(frame);
    const pending = this.beforeCaughtUp ?? [];
    this.beforeCaughtUp = undefined;
    for (const item of pending) this.sequencer.offer(item);
  }

  /** Follows a group joined while the stream is open, from `seq` on. */
  follow(conversationId: string, seq: number): void {
    this.membershipChanges.set(conversationId, this.clock.now());
    this.conversations.add(conversationId);
    this.sequencer.advance(conversationId, seq);
  }

  unfollow(conversationId: string): void {
    this.membershipChanges.set(conversationId, this.clock.now());
    this.conversations.delete(conversationId);
    this.sequencer.forget(conversationId);
  }

  /**
   * Ends the stream's call (idempotent): OK without `kind`, else with that
   * status. `lastFrame` (the drain) is written even when the transport is
   * full, after what it already holds; frames still queued here are dropped,
   * and the client resumes from its cursors. The teardown runs when the
   * call's owner reports the end through `onClose`.
   */
  end(kind?: ErrorKind, reason?: string, lastFrame?: Buffer): void {
    if (this.ended) return;
    this.flush();
    this.finish();
    this.sink.end(kind, reason, lastFrame);
  }

  /**
   * Writes what this turn queued (a batching stream's pending batch) now, as
   * far as the transport takes it: every way the stream ends calls this
   * before its last frame, so acks and messages already queued are not lost.
   */
  flush(): void {
    if (!this.ended) this.pump();
  }

  /** Tears down once; true the first time. */
  private finish(): boolean {
    if (this.ended) return false;
    this.ended = true;
    this.queue.length = 0;
    this.sequencer.dispose();
    this.releaseWaiters();
    for (const listener of this.endListeners.splice(0)) listener();
    return true;
  }

  /** Called once when the stream ends, for whatever reason. */
  onEnd(listener: () => void): void {
    if (this.ended) listener();
    else this.endListeners.push(listener);
  }

  private push(frame: Buffer): void {
    if (this.ended) return;
    this.queue.push(frame);
    // Too slow: more than queueLimit frames wait behind a full transport (not merely this turn's batch).
    if (this.blocked && this.queue.length > this.queueLimit) this.tooSlow();
    else if (!this.acceptBatch || this.queue.length >= MAX_BATCH_FRAMES) this.pump();
    else if (!this.flushScheduled) {
      // Whatever else this turn queues (a fan-out, a burst of acks) joins the same write.
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.pump();
      });
    }
  }

  /** The next write: one frame, or for a batching stream up to MAX_BATCH_FRAMES of them as one `batch` frame. */
  private nextWrite(): Buffer {
    if (!this.acceptBatch || this.queue.length === 1) return this.queue.shift() as Buffer;
    return batchFrame(this.queue.splice(0, MAX_BATCH_FRAMES));
  }

  private pump(): void {
    while (!this.blocked && !this.ended && this.queue.length > 0) {
      if (!this.sink.write(this.nextWrite())) {
        this.blocked = true;
        this.sink.onDrain(() => {
          this.blocked = false;
          this.pump();
          if (!this.blocked) this.releaseWaiters();
        });
      }
    }
  }

  private releaseWaiters(): void {
    for (const waiter of this.drainWaiters.splice(0)) waiter();
  }

  private tooSlow(): void {
    this.log.warn({ queueLimit: this.queueLimit }, "consumer too slow; ending the stream so it resumes from its cursors");
    this.end("resource_exhausted", "consumer too slow: resume from your cursors");
  }
}
