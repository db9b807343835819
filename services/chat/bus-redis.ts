import type { Redis } from "ioredis";
import type { Logger } from "../lib/logger.js";
import type { Bus, BusEvent, BusHandler } from "./bus.js";

/**
 * Redis pub/sub between pods. Publishing uses the command connection;
 * subscribing has a connection of its own, as Redis requires. A message
 * travels as its protobuf encoding behind a short text header (see
 * `encodeEvent`), so no pod decodes or re-encodes it; other events are JSON. When the subscriber connection drops, events published
 * meanwhile are lost, so `onGap` tells the hub to end its streams, which
 * resume from their cursors once Redis is back. A frozen Redis (a paused
 * process, a network black hole) drops nothing and closes nothing, so the
 * subscriber is pinged every second; one that does not answer within the
 * command timeout is reconnected, which is a gap like any other.
 */
/** How often the subscriber connection is checked; it must answer within the command timeout (lib/redis.ts). */
const SUBSCRIBER_PING_MS = 1_000;

export class RedisBus implements Bus {
  private readonly handlers: BusHandler[] = [];
  private readonly gapHandlers: (() => void)[] = [];
  private connected: boolean;
  private readonly health: NodeJS.Timeout;

  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly log: Logger,
  ) {
    this.connected = subscriber.status === "ready";
    subscriber.on("messageBuffer", (channel: Buffer, payload: Buffer) => this.receive(channel.toString(), payload));
    subscriber.on("ready", () => (this.connected = true));
    subscriber.on("close", () => this.lost());
    this.health = setInterval(() => void this.checkSubscriber(), SUBSCRIBER_PING_MS);
    this.health.unref();
  }

  private async checkSubscriber(): Promise<void> {
    if (this.subscriber.status !== "ready" || this.pinging) return;
    this.pinging = true;
    try {
      await this.subscriber.ping();
    } catch (err) {
      if (this.subscriber.status !== "ready") return;
      this.log.warn({ err }, "the bus subscriber does not answer; reconnecting it");
      // A frozen peer never answers our FIN either, so "close" would only come once it wakes: report the gap now.
      this.lost();
      this.subscriber.disconnect(true);
    } finally {
      this.pinging = false;
    }
  }

  private pinging = false;

  /** The subscription is gone (closed, or not answering): events may be missed until it is back. */
  private lost(): void {
    if (!this.connected) return;
    this.connected = false;
    for (const handler of this.gapHandlers) handler();
  }

  async publish(channel: string, event: BusEvent): Promise<void> {
    await this.publisher.publish(channel, encodeEvent(event));
  }

  async subscribe(channels: string[]): Promise<void> {
    if (channels.length > 0) await this.subscriber.subscribe(...channels);
  }

  async unsubscribe(channels: string[]): Promise<void> {
    if (channels.length > 0 && this.subscriber.status === "ready") await this.subscriber.unsubscribe(...channels);
  }

  onEvent(handler: BusHandler): void {
    this.handlers.push(handler);
  }

  onGap(handler: () => void): void {
    this.gapHandlers.push(handler);
  }

  async close(): Promise<void> {
    clearInterval(this.health);
    this.connected = false;
    this.subscriber.disconnect();
  }

  private receive(channel: string, payload: Buffer): void {
    let event: BusEvent;
    try {
      event = decodeEvent(payload);
    } catch (err) {
      this.log.error({ err, channel }, "undecodable bus event dropped");
      return;
    }
    for (const handler of this.handlers) handler(channel, event);
  }
}

/** First byte of a payload: a message (binary, behind a header) or any other event (JSON). */
const MESSAGE = 0x4d; // "M"
const JSON_EVENT = 0x4a; // "J"
const NEWLINE = 0x0a;

/**
 * `M<origin>\n<conversation id>\n<seq>\n<sent at, epoch ms>\n<Message bytes>` for a message (ids
 * and origins never hold a newline), `J<JSON>` for anything else.
 */
function encodeEvent(event: BusEvent): Buffer {
  if (event.type !== "message") return Buffer.from(`J${JSON.stringify(event)}`);
  const header = Buffer.from(`M${event.origin}\n${event.conversationId}\n${event.seq}\n${event.sentAt}\n`);
  return Buffer.concat([header, event.message]);
}

function decodeEvent(payload: Buffer): BusEvent {
  if (payload[0] === JSON_EVENT) return JSON.parse(payload.toString("utf8", 1)) as BusEvent;
  if (payload[0] !== MESSAGE) throw new Error(`unknown bus payload type ${payload[0]}`);
  const originEnd = payload.indexOf(NEWLINE, 1);
  const conversationEnd = payload.indexOf(NEWLINE, originEnd + 1);
  const seqEnd = payload.indexOf(NEWLINE, conversationEnd + 1);
  const sentAtEnd = payload.indexOf(NEWLINE, seqEnd + 1);
  if (originEnd < 0 || conversationEnd < 0 || seqEnd < 0 || sentAtEnd < 0) throw new Error("truncated message header");
  return {
    type: "message",
    origin: payload.toString("utf8", 1, originEnd),
    conversationId: payload.toString("utf8", originEnd + 1, conversationEnd),
    seq: Number(payload.toString("latin1", conversationEnd + 1, seqEnd)),
    sentAt: Number(payload.toString("latin1", seqEnd + 1, sentAtEnd)),
    message: payload.subarray(sentAtEnd + 1),
  };
}
