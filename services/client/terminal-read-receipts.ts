import type { Cursor } from "../../gen/parley/chat/v1/chat.js";

/**
 * Coalesces read receipts per conversation: the first message shown starts a
 * short timer, later ones only raise the seq, and one receipt carrying the
 * highest seq goes out when it fires. A replay of hundreds of messages thus
 * costs one frame per conversation, not one per message. Default 500 ms.
 * When `send` returns false (the stream is down) the receipt waits for the
 * next round.
 */
export class ReadReceipts {
  private readonly pending = new Map<string, { seq: number; timer: NodeJS.Timeout }>();
  private readonly sent = new Map<string, number>();

  constructor(
    private readonly send: (conversationId: string, seq: number) => boolean,
    private readonly delayMs = 500,
  ) {}

  /** The message `seq` of `conversationId` has been shown. */
  mark(conversationId: string, seq: number): void {
    if (seq <= (this.sent.get(conversationId) ?? 0)) return;
    const pending = this.pending.get(conversationId);
    if (pending !== undefined) {
      pending.seq = Math.max(pending.seq, seq);
      return;
    }
    this.schedule(conversationId, seq);
  }

  /** Stops the timers and hands back the receipts not sent yet, so that a closing client can send them another way. */
  takePending(): Cursor[] {
    const cursors = [...this.pending].map(([conversationId, { seq, timer }]) => {
      clearTimeout(timer);
      return { conversationId, seq };
    });
    this.pending.clear();
    return cursors;
  }

  private flush(conversationId: string): void {
    const pending = this.pending.get(conversationId);
    if (pending === undefined) return;
    this.pending.delete(conversationId);
    if (!this.send(conversationId, pending.seq)) {
      this.schedule(conversationId, pending.seq);
      return;
    }
    this.sent.set(conversationId, pending.seq);
  }

  private schedule(conversationId: string, seq: number): void {
    const timer = setTimeout(() => this.flush(conversationId), this.delayMs);
    this.pending.set(conversationId, { seq, timer });
  }
}
