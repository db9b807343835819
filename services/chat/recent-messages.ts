import { boundedCache } from "../lib/bounded-cache.js";

/** Messages held per conversation: the newest this-many, at most. */
const PER_CONVERSATION = 128;
/** Conversations held at once (the least recently used goes first). */
const CONVERSATIONS = 2_000;

/** A replayed message: its seq and its encoded `message` frame. */
export interface ReplayFrame {
  seq: number;
  frame: Buffer;
}

/** One conversation's newest frames, for seqs `firstSeq`, `firstSeq + 1`, … without a hole. */
interface Tail {
  firstSeq: number;
  frames: Buffer[];
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
 * At most `PER_CONVERSATION` (128) frames for each of `CONVERSATIONS`
 * (2000) conversations: about 30 MB in the worst case, nothing when idle.
 */
export class RecentMessages {
  private readonly tails = boundedCache<string, Tail>(CONVERSATIONS);

  /**
   * Notes a committed message. A seq after a hole (a message this pod never
   * saw) starts the conversation's tail again from it; a repeat is ignored.
   */
  record(conversationId: string, seq: number, frame: Buffer): void {
    const tail = this.tails.get(conversationId);
    if (tail === undefined) {
      this.tails.set(conversationId, { firstSeq: seq, frames: [frame] });
      return;
    }
    const next = tail.firstSeq + tail.frames.length;
    if (seq < next) return;
    if (seq > next) {
      tail.firstSeq = seq;
      tail.frames = [frame];
      return;
    }
    tail.frames.push(frame);
    if (tail.frames.length > PER_CONVERSATION) {
      tail.frames.shift();
      tail.firstSeq += 1;
    }
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
