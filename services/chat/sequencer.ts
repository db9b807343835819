import { type Clock, systemClock } from "../lib/clock.js";

/** Anything with a place in a conversation's sequence. */
export interface Sequenced {
  conversationId: string;
  seq: number;
}

/** Loads the items with `afterSeq < seq < beforeSeq` of a conversation, ascending. */
export type GapFiller<T extends Sequenced> = (conversationId: string, afterSeq: number, beforeSeq: number) => Promise<T[]>;

/**
 * Puts one stream's live messages in order, once each. Pods publish after
 * their commit, so two senders in one conversation can publish seq 6 before
 * seq 5. An item past a gap is held for `waitMs`, which is usually enough for
 * the missing one to arrive; if it does not, the gap is loaded with `fill`
 * (when seq N is committed, every seq below N is too, so the gap is there).
 * Items at or below the position already delivered are dropped.
 */
export interface SequencerOptions {
  /** How long an item past a gap is held before the gap is loaded, in ms. Default 100. */
  waitMs?: number;
  /** What the wait is timed on. Default the system clock. */
  clock?: Clock;
}

export class Sequencer<T extends Sequenced> {
  private readonly positions = new Map<string, number>();
  private readonly held = new Map<string, Map<number, T>>();
  private readonly timers = new Map<string, unknown>();
  private readonly waitMs: number;
  private readonly clock: Clock;
  private readonly filling = new Set<string>();
  private disposed = false;

  constructor(
    private readonly emit: (item: T) => void,
    private readonly fill: GapFiller<T>,
    private readonly onFillError: (err: unknown) => void,
    options: SequencerOptions = {},
  ) {
    this.waitMs = options.waitMs ?? 100;
    this.clock = options.clock ?? systemClock;
  }

  /** The highest seq delivered in the conversation; 0 when none. */
  position(conversationId: string): number {
    return this.positions.get(conversationId) ?? 0;
  }

  /** Moves the position forward (after a replay, or on joining a group); never backwards. */
  advance(conversationId: string, seq: number): void {
    if (seq > this.position(conversationId)) this.positions.set(conversationId, seq);
    this.release(conversationId);
  }

  /** Forgets a conversation the stream no longer follows. */
  forget(conversationId: string): void {
    this.positions.delete(conversationId);
    this.held.delete(conversationId);
    this.cancelFill(conversationId);
  }

  offer(item: T): void {
    if (this.disposed) return;
    const { conversationId, seq } = item;
    const position = this.position(conversationId);
    if (seq <= position) return;
    if (seq === position + 1 && !this.filling.has(conversationId)) {
      this.deliver(item);
      this.release(conversationId);
      return;
    }
    let held = this.held.get(conversationId);
    if (held === undefined) {
      held = new Map();
      this.held.set(conversationId, held);
    }
    held.set(seq, item);
    this.scheduleFill(conversationId);
  }

  dispose(): void {
    this.disposed = true;
    for (const timer of this.timers.values()) this.clock.clearTimeout(timer);
    this.timers.clear();
    this.held.clear();
  }

  private deliver(item: T): void {
    this.positions.set(item.conversationId, item.seq);
    this.emit(item);
  }

  /** Delivers held items that have become next in line; re-arms the timer if a gap remains. */
  private release(conversationId: string): void {
    const held = this.held.get(conversationId);
    if (held === undefined || this.filling.has(conversationId)) return;
    for (const seq of [...held.keys()].sort((a, b) => a - b)) {
      const position = this.position(conversationId);
      if (seq <= position) held.delete(seq);
      else if (seq === position + 1) {
        this.deliver(held.get(seq) as T);
        held.delete(seq);
      } else break;
    }
    if (held.size === 0) {
      this.held.delete(conversationId);
      this.cancelFill(conversationId);
    } else this.scheduleFill(conversationId);
  }

  private scheduleFill(conversationId: string): void {
    if (this.timers.has(conversationId) || this.filling.has(conversationId)) return;
    this.timers.set(
      conversationId,
      this.clock.setTimeout(() => void this.fillGap(conversationId), this.waitMs),
    );
  }

  private cancelFill(conversationId: string): void {
    const timer = this.timers.get(conversationId);
    if (timer === undefined) return;
    this.clock.clearTimeout(timer);
    this.timers.delete(conversationId);
  }

  private async fillGap(conversationId: string): Promise<void> {
    this.timers.delete(conversationId);
    const held = this.held.get(conversationId);
    if (held === undefined || held.size === 0 || this.disposed) return;
    const firstHeld = Math.min(...held.keys());
    this.filling.add(conversationId);
    try {
      const missing = await this.fill(conversationId, this.position(conversationId), firstHeld);
      if (this.disposed) return;
      for (const item of missing) if (item.seq === this.position(conversationId) + 1) this.deliver(item);
      // Seqs have no gaps in storage, so this only happens if rows were deleted: move on rather than stall.
      if (this.position(conversationId) < firstHeld - 1) this.positions.set(conversationId, firstHeld - 1);
    } catch (err) {
      this.onFillError(err);
      return;
    } finally {
      this.filling.delete(conversationId);
    }
    this.release(conversationId);
  }
}
