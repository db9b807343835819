import type { Redis } from "ioredis";
import type { Logger } from "../lib/logger.js";
import type { Bus, BusEvent, BusHandler } from "./bus.js";

/**
 * Redis pub/sub between pods. Publishing uses the command connection;
 * subscribing has a connection of its own, as Redis requires. Events are
 * JSON, decoded once per pod: the hub then encodes one protobuf frame for all
 * of its streams. When the subscriber connection drops, events published
 * meanwhile are lost, so `onGap` tells the hub to end its streams, which
 * resume from their cursors once Redis is back.
 */
export class RedisBus implements Bus {
  private readonly handlers: BusHandler[] = [];
  private readonly gapHandlers: (() => void)[] = [];
  private connected: boolean;

  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly log: Logger,
  ) {
    this.connected = subscriber.status === "ready";
    subscriber.on("message", (channel: string, payload: string) => this.receive(channel, payload));
    subscriber.on("ready", () => (this.connected = true));
    subscriber.on("close", () => {
      if (!this.connected) return;
      this.connected = false;
      for (const handler of this.gapHandlers) handler();
    });
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
