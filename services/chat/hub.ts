import { randomBytes } from "node:crypto";
import type { ErrorKind } from "../lib/app-error.js";
import { conversationChannel, userChannel } from "../lib/keys.js";
import type { Logger } from "../lib/logger.js";
import type { Bus, BusEvent } from "./bus.js";
import type { ChatMetrics } from "./chat-metrics.js";
import type { ChatStream } from "./chat-stream.js";
import { encodeFrame, messageFrameOf, toTarget } from "./frames.js";
import type { RecentMessages } from "./recent-messages.js";

/**
 * This pod's open streams, indexed by the bus channels they listen to. The hub
 * keeps one bus subscription per channel however many local streams share it,
 * and encodes each event once for all of them. A message sent on this pod is
 * delivered here at its commit (`deliver`), and its echo from the bus is
 * skipped: the bus carries it to the other pods only.
 */
export class Hub {
  /** This hub's id on the bus: the `origin` of the messages it publishes. */
  readonly origin = randomBytes(8).toString("hex");
  private readonly byChannel = new Map<string, Set<ChatStream>>();
  private readonly subscriptions = new Map<string, Promise<void>>();
  private readonly streams = new Set<ChatStream>();
  private readonly log: Logger;

  /** `recent`, when given, is told every message this hub sees, for replays (recent-messages.ts). */
  constructor(
    private readonly bus: Bus,
    log: Logger,
    private readonly metrics?: ChatMetrics,
    private readonly recent?: RecentMessages,
  ) {
    this.log = log.child({ component: "hub" });
    bus.onEvent((channel, event) => this.dispatch(channel, event));
    // Live events may have been missed (the bus connection dropped): every stream resumes from its cursors.
    bus.onGap(() => {
      const ended = this.endAll("unavailable", "live events may have been missed: resume from your cursors");
      if (ended > 0) this.log.warn({ streams: ended }, "bus connection interrupted; ended streams so that clients resume");
    });
  }

  get size(): number {
    return this.streams.size;
  }

  /**
   * Starts routing live events to `stream`: its user's channel and the given
   * group or broadcast conversations. Resolves once the bus subscriptions are
   * in place, so a replay that starts afterwards cannot miss anything.
   */
  async add(stream: ChatStream, conversationIds: string[]): Promise<void> {
    // A stream that ended while it was opening must not be attached: nothing would ever detach it.
    if (stream.isEnded) return;
    this.streams.add(stream);
    for (const id of conversationIds) stream.conversations.add(id);
    const subscribed = [
      this.attach(userChannel(stream.user.id), stream),
      ...conversationIds.map((id) => this.attach(conversationChannel(id), stream)),
    ];
    // Registered once it is attached everywhere, so that its end detaches it from every channel.
    stream.onEnd(() => this.remove(stream));
    await Promise.all(subscribed);
  }

  /** Sends `frame` to every stream on this hub, then ends each with `kind` (a bus gap ends them all with UNAVAILABLE); returns how many. */
  endAll(kind: ErrorKind, reason: string, frame?: Buffer): number {
    const streams = [...this.streams];
    for (const stream of streams) stream.end(kind, reason, frame);
    return streams.length;
  }

  /** This pod's streams, for the reconciler. */
  openStreams(): ChatStream[] {
    return [...this.streams];
  }

  /**
   * Starts routing a group the user joined to `stream`, from `seq` on (the
   * end of the group at the join); once the subscription is in place, what
   * was committed meanwhile is loaded from Postgres.
   */
  follow(stream: ChatStream, conversationId: string, seq: number): void {
    if (stream.isEnded || stream.conversations.has(conversationId)) return;
    stream.follow(conversationId, seq);
    this.attach(conversationChannel(conversationId), stream).then(
      () => stream.catchUp(conversationId),
      (err: unknown) => {
        this.log.warn({ err }, "could not follow a joined group; ending the stream so that it resumes");
        stream.end("unavailable", "could not follow a joined group, resume from your cursors");
      },
    );
  }

  /** Stops routing a group the user left to `stream`. */
  unfollow(stream: ChatStream, conversationId: string): void {
    if (!stream.conversations.has(conversationId)) return;
    stream.unfollow(conversationId);
    this.detach(conversationChannel(conversationId), stream);
  }

  private remove(stream: ChatStream): void {
    if (!this.streams.delete(stream)) return;
    this.detach(userChannel(stream.user.id), stream);
    for (const id of stream.conversations) this.detach(conversationChannel(id), stream);
  }

  private attach(channel: string, stream: ChatStream): Promise<void> {
    let set = this.byChannel.get(channel);
    if (set === undefined) {
      set = new Set();
      this.byChannel.set(channel, set);
    }
    set.add(stream);
    let subscribed = this.subscriptions.get(channel);
    if (subscribed === undefined) {
      subscribed = this.bus.subscribe([channel]);
      this.subscriptions.set(channel, subscribed);
      subscribed.catch(() => this.subscriptions.delete(channel));
    }
    return subscribed;
  }

  private detach(channel: string, stream: ChatStream): void {
    const set = this.byChannel.get(channel);
    if (set === undefined || !set.delete(stream) || set.size > 0) return;
    this.byChannel.delete(channel);
    this.subscriptions.delete(channel);
    this.bus.unsubscribe([channel]).catch((err: unknown) => this.log.warn({ err, channel }, "unsubscribe failed"));
  }

  /**
   * A message committed on this pod, to this pod's streams on `channels`, at
   * once: `frame` is its encoded `message` frame, `sentAt` its commit time
   * (epoch ms). A stream on several of the
   * channels (a DM to oneself) gets it once: the sequencer drops repeats.
   */
  deliver(channels: string[], conversationId: string, seq: number, sentAt: number, frame: Buffer): void {
    this.recent?.record(conversationId, seq, frame);
    for (const channel of channels) {
      const streams = this.byChannel.get(channel);
      if (streams === undefined || streams.size === 0) continue;
      for (const stream of streams) stream.offerMessage(conversationId, seq, frame);
      this.metrics?.delivered(conversationId, sentAt, streams.size, seq);
    }
  }

  private dispatch(channel: string, event: BusEvent): void {
    const streams = this.byChannel.get(channel);
    if (streams === undefined || streams.size === 0) return;
    switch (event.type) {
      case "message": {
        if (event.origin === this.origin) return;
        const frame = messageFrameOf(event.message);
        this.recent?.record(event.conversationId, event.seq, frame);
        for (const stream of streams) stream.offerMessage(event.conversationId, event.seq, frame);
        this.metrics?.delivered(event.conversationId, event.sentAt, streams.size, event.seq);
        return;
      }
      case "presence": {
        const frame = encodeFrame({ presence: { username: event.username, online: event.online } });
        for (const stream of streams) stream.send(frame);
        return;
      }
      case "typing": {
        const frame = encodeFrame({ typing: { from: event.from, to: toTarget(event.toKind, event.toName) } });
        for (const stream of streams) if (stream.user.id !== event.fromUserId) stream.send(frame);
        return;
      }
      case "membership": {
        for (const stream of [...streams]) {
          if (stream.user.id !== event.userId) continue;
          if (event.joined) this.follow(stream, event.conversationId, event.lastSeq);
          else this.unfollow(stream, event.conversationId);
        }
        return;
      }
    }
  }
}
