import { userChannel } from "../lib/keys.js";
import type { Logger } from "../lib/logger.js";
import type { Bus, BusEvent } from "./bus.js";
import { encodedMessage, messageFrameOf } from "./frames.js";
import type { Hub } from "./hub.js";
import type { MessageRecord } from "./message-store.js";

/** A failed publish of a message is tried again after this long (ms). */
const PUBLISH_RETRY_MS = 250;

/**
 * Publishes what is already committed, fire and forget. A failed publish of a
 * message (a dropped Redis connection reconnects within a few hundred ms) is
 * tried once more; if that fails too, or a membership event is lost, open
 * streams still catch up from Postgres through their pod's stream reconciler
 * (stream-reconciler.ts), in about 3 s (the design allows 5 s).
 */
export class EventPublisher {
  constructor(
    private readonly bus: Bus,
    private readonly hub: Hub,
    private readonly log: Logger,
  ) {}

  /**
   * A committed message: to this pod's streams at once, and over the bus to
   * the other pods, encoded once for both.
   */
  message(channels: string[], record: MessageRecord): void {
    const { conversationId, seq } = record;
    const message = encodedMessage(record);
    const sentAt = record.sentAt.getTime();
    this.hub.deliver(channels, conversationId, seq, sentAt, messageFrameOf(message));
    this.publish(channels, { type: "message", origin: this.hub.origin, conversationId, seq, sentAt, message });
  }

  publish(channels: string[], event: BusEvent): void {
    for (const channel of channels) {
      this.bus.publish(channel, event).catch((err: unknown) => {
        // A membership event retried late could land after a newer one (a leave after a join); the reconciler repairs it.
        if (event.type !== "message") {
          this.log.warn({ err, channel, type: event.type }, "publish failed; open streams catch up from Postgres");
          return;
        }
        setTimeout(() => {
          this.bus.publish(channel, event).catch((err: unknown) => {
            this.log.warn({ err, channel, type: event.type }, "publish failed twice; open streams catch up from Postgres");
          });
        }, PUBLISH_RETRY_MS).unref();
      });
    }
  }

  /** The user joined or left a group: their streams on every pod follow (or drop) it from `lastSeq`. */
  membership(userId: number, conversationId: string, joined: boolean, lastSeq: number): void {
    this.publish([userChannel(userId)], { type: "membership", userId, conversationId, joined, lastSeq });
  }
}
