import type { ConversationKindName } from "../db/schema.js";

/**
 * A committed message, as it travels between pods: its place in its
 * conversation and its `Message` encoding (frames.ts), so that no pod decodes
 * or re-encodes it. `origin` is the publishing hub's id: that pod delivered
 * the message to its own streams at the commit, and skips its own echo.
 */
interface MessageEvent {
  type: "message";
  origin: string;
  conversationId: string;
  seq: number;
  /** When it was committed (Postgres' `sent_at`), in epoch ms: for the fan-out lag metrics. */
  sentAt: number;
  message: Uint8Array;
}

/** What travels between pods. Each event goes to one channel (see lib/keys.ts). */
export type BusEvent =
  | MessageEvent
  | { type: "presence"; username: string; online: boolean }
  | { type: "typing"; from: string; fromUserId: number; conversationId: string; toKind: ConversationKindName; toName: string }
  /** The user joined or left a group: their streams on every pod follow it. */
  | { type: "membership"; userId: number; conversationId: string; joined: boolean; lastSeq: number };

export type BusHandler = (channel: string, event: BusEvent) => void;

/**
 * Pub/sub between this pod's hub and every other pod's. `subscribe` resolves
 * once events on the channel will arrive. `onGap` fires when live events may
 * have been missed (the connection to the broker dropped), so that streams
 * can be ended and resume from their cursors.
 */
export interface Bus {
  publish(channel: string, event: BusEvent): Promise<void>;
  subscribe(channels: string[]): Promise<void>;
  unsubscribe(channels: string[]): Promise<void>;
  onEvent(handler: BusHandler): void;
  onGap(handler: () => void): void;
  close(): Promise<void>;
}
