import { LRUCache } from "lru-cache";

/** Messages held per conversation: the newest this-many, at most. */
const PER_CONVERSATION = 128;
/** Bytes held in all, frames and their bookkeeping: the least recently active conversations go first. */
const BUDGET_BYTES = 16 * 1024 * 1024;
/** What a held frame costs beyond its bytes (its Buffer and ArrayBuffer objects), roughly. */
const FRAME_OVERHEAD_BYTES = 160;

/** A replayed message: its seq and its encoded `message` frame. */
export interface ReplayFrame {
  seq: number;
  frame: Buffer;
}

/**
 * A copy of `frame` in memory of its own. A small Buffer is usually a slice
 * of an 8 KB pool that Node shares between allocations; one kept for long
 * would keep the whole slab alive with it.
 */
function owned(frame: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(frame.length);
  frame.copy(copy);
  return copy;
}

/** One conversation's newest frames, for seqs `firstSeq`, `firstSeq + 1`, … without a hole. */
interface Tail {
  firstSeq: number;
  frames: Buffer[];
  /** The frames' bytes plus their overhead: the tail's size in the budget. */
  bytes: number;
}

/**
 * The newest messages of each conversation this pod saw live (committed
 * here, or arriving on the bus), as encoded `message` frames, without holes.
 * When a pod drains, its clients reconnect to the others at once and each
 * replays the few messages it missed, mostly the same few: served from here,
 * those replays need neither a Postgres read nor an encoding each. A
 * committed message never changes, so a held frame cannot be stale; a range
 * is served only when every seq in it is held, and otherwise read from
 * Postgres as before.
 *
 * At most `PER_CONVERSATION` (128) frames per conversation and
 * `BUDGET_BYTES` (16 MB) in all; nothing when idle.
 */
export class RecentMessages {
  private readonly tails = new LRUCache<string, Tail>({ maxSize: BUDGET_BYTES, sizeCalculation: (tail) => tail.bytes });

  /**
   * Notes a committed message. A seq after a hole (a message this pod never
   * saw) starts the conversation's tail again from it; a repeat is ignored.
   */
  record(conversationId: string, seq: number, frame: Buffer): void {
    const tail = this.tails.get(conversationId);
    const next = tail === undefined ? seq : tail.firstSeq + tail.frames.length;
    if (tail === undefined || seq > next) {
      this.tails.set(conversationId, { firstSeq: seq, frames: [owned(frame)], bytes: frame.length + FRAME_OVERHEAD_BYTES });
      return;
    }
    if (seq < next) return;
    tail.frames.push(owned(frame));
    tail.bytes += frame.length + FRAME_OVERHEAD_BYTES;
    if (tail.frames.length > PER_CONVERSATION) {
      tail.bytes -= (tail.frames.shift()?.length ?? 0) + FRAME_OVERHEAD_BYTES;
      tail.firstSeq += 1;
    }
    // Set again, as a new object: lru-cache sizes an entry only when its value changes.
    this.tails.set(conversationId, { ...tail });
  }

  /**
   * The frames of every seq strictly between `afterSeq` and `beforeSeq`,
   * ascending, or undefined unless all of them are held.
   */
  range(conversationId: string, afterSeq: number, beforeSeq: number): ReplayFrame[] | undefined {
    if (beforeSeq - afterSeq <= 1) return [];
    const tail = this.tails.get(conversationId);
    if (tail === undefined) return undefined;
    const from = afterSeq + 1 - tail.firstSeq;
    const to = beforeSeq - 1 - tail.firstSeq;
    if (from < 0 || to >= tail.frames.length) return undefined;
    const found: ReplayFrame[] = [];
    for (let i = from; i <= to; i++) found.push({ seq: tail.firstSeq + i, frame: tail.frames[i] });
    return found;
  }
}
