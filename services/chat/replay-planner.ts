import type { ConversationStore } from "./conversation-store.js";
import { messageFrame } from "./frames.js";
import type { MessageRecord, MessageStore } from "./message-store.js";
import type { RecentMessages, ReplayFrame } from "./recent-messages.js";
import type { UserRef } from "../db/schema.js";

/**
 * The offline queue (no cursor) replays at most the newest this-many messages
 * per conversation; the client pages the rest. A replay from a cursor is not
 * capped: it is read in pages of this size.
 */
const REPLAY_LIMIT = 500;

/** One conversation's part of a resume: replay after `fromSeq`, up to `lastSeq`. */
export interface ReplayPlan {
  conversationId: string;
  fromSeq: number;
  lastSeq: number;
  /** True for the offline queue (no cursor): only the newest `REPLAY_LIMIT` are replayed. */
  capped: boolean;
}

/** What a resuming stream replays, and what a live stream missed, read from Postgres (design.md, guarantee 4). */
export class ReplayPlanner {
  /** `recent`, when given, serves the pages it holds whole (recent-messages.ts); the rest is read from Postgres. */
  constructor(
    private readonly conversations: ConversationStore,
    private readonly messages: MessageStore,
    private readonly recent?: RecentMessages,
  ) {}

  /**
   * For each of the user's conversations, everything after the client's
   * cursor, or after the read cursor when the client sent none (the offline
   * queue). Cursors for conversations the user is not in are ignored.
   */
  async plan(user: UserRef, cursors: Map<string, number>): Promise<ReplayPlan[]> {
    const rows = await this.conversations.positionsOf(user.id);
    return rows.map((row) => {
      const cursor = cursors.get(row.id);
      return {
        conversationId: row.id,
        fromSeq: Math.min(cursor ?? row.lastReadSeq, row.lastSeq),
        lastSeq: row.lastSeq,
        capped: cursor === undefined,
      };
    });
  }

  /**
   * The next page of a replay, ascending, as `message` frames: the messages
   * after `afterSeq` up to `plan.lastSeq`. For the offline queue, the one
   * page of the newest `REPLAY_LIMIT`; from a cursor, the oldest
   * `REPLAY_LIMIT` not yet replayed.
   */
  async page(plan: ReplayPlan, afterSeq = plan.fromSeq): Promise<ReplayFrame[]> {
    const { conversationId, lastSeq } = plan;
    const held = this.recent?.range(conversationId, afterSeq, lastSeq + 1);
    if (held !== undefined && held.length <= REPLAY_LIMIT) return held;
    const records = await this.messages.range(conversationId, afterSeq, lastSeq + 1, REPLAY_LIMIT, plan.capped ? "newest" : "oldest");
    return records.map((record) => ({ seq: record.seq, frame: messageFrame(record) }));
  }

  /** Every message a live stream missed between two seqs (exclusive), oldest first, read in pages. */
  async missed(conversationId: string, afterSeq: number, beforeSeq: number): Promise<MessageRecord[]> {
    const found: MessageRecord[] = [];
    for (let from = afterSeq; from < beforeSeq - 1; ) {
      const page = await this.messages.range(conversationId, from, beforeSeq, REPLAY_LIMIT, "oldest");
      found.push(...page);
      if (page.length < REPLAY_LIMIT) break;
      from = page[page.length - 1].seq;
    }
    return found;
  }
}
