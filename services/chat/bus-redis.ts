import type { Redis } from "ioredis";
import type { Logger } from "../lib/logger.js";
import type { Bus, BusEvent, BusHandler } from "./bus.js";

/**
 * Redis pub/sub between pods. Publishing uses the command connection;
 * subscribing has a connection of its own, as Redis requires. Events are
 * JSON, decoded once per pod: the hub then encodes one protobuf frame for all
 * of its streams. When the subscriber connection drops, events published
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
    subscriber.on("message", (channel: string, payload: string) => this.receive(channel, payload));
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
    await this.publisher.publish(channel, JSON.stringify(event));
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

  private receive(channel: string, payload: string): void {
    let event: BusEvent;
    try {
      event = JSON.parse(payload) as BusEvent;
      if (event.type === "message") event.message.sentAt = new Date(event.message.sentAt);
    } catch (err) {
      this.log.error({ err, channel }, "undecodable bus event dropped");
      return;
    }
    for (const handler of this.handlers) handler(channel, event);
  }
}
