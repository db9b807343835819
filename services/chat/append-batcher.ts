import { isUnavailable } from "../lib/app-error.js";
import type { AppendResult, MessageRecord, MessageStore, NewMessage } from "./message-store.js";

interface Pending {
  message: NewMessage;
  resolve(result: AppendResult): void;
  reject(err: unknown): void;
}

/** The most messages one statement takes. */
const MAX_BATCH = 200;

/**
 * Statements in flight at once, at most. Each conversation always goes to
 * the same lane, and a lane has one statement in flight, so a
 * conversation's messages commit in the order they were submitted; lanes
 * let sends to other conversations commit meanwhile. Well under the pool's
 * 10 connections, which history, reads and replays share.
 */
const LANES = 4;

/** A small, stable hash of a conversation id (FNV-1a), to pick its lane. */
function laneOf(conversationId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < conversationId.length; i++) hash = Math.imul(hash ^ conversationId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % LANES;
}

/**
 * Group commit for sends, across senders and conversations. Appends queue
 * up in their conversation's lane while the lane's previous statement is in
 * flight, and the next statement takes them all: a busy pod costs one
 * round-trip and one WAL flush per batch, not per message, and every
 * conversation keeps the order its messages were submitted in. An idle pod
 * still commits at once (a batch of one). A batch that fails because of one
 * of its messages is settled one by one, so that message alone fails.
 */
export class AppendBatcher {
  private readonly lanes: (Pending[] | undefined)[] = Array.from({ length: LANES }, () => undefined);

  constructor(private readonly store: MessageStore) {}

  /** Resolves once the message is committed, as `MessageStore.append` does. */
  append(message: NewMessage): Promise<AppendResult> {
    const lane = laneOf(message.conversationId);
    return new Promise((resolve, reject) => {
      const queue = this.lanes[lane];
      if (queue !== undefined) {
        queue.push({ message, resolve, reject });
        return;
      }
      this.lanes[lane] = [{ message, resolve, reject }];
      void this.flush(lane);
    });
  }

  private async flush(lane: number): Promise<void> {
    for (;;) {
      const queue = this.lanes[lane] as Pending[];
      const batch = queue.splice(0, MAX_BATCH);
      if (batch.length === 0) {
        this.lanes[lane] = undefined;
        return;
      }
      await this.commit(batch);
    }
  }

  /**
   * Commits a batch in one statement when it can. Messages the statement
   * did not store (a sender not in the group, a retry of a stored id) are
   * settled on their own, as are all of them when the statement fails for
   * something about a message (text Postgres cannot store, one id twice in
   * the batch): nothing of it was
   * stored, so each message is appended on its own, in order, and gets its
   * own outcome; none is lost or stored twice. When a dependency is down,
   * every message fails alike (retrying one by one would only wait longer).
   */
  private async commit(batch: Pending[]): Promise<void> {
    let records: (MessageRecord | undefined)[] = [];
    if (batch.length > 1) {
      try {
        records = await this.store.appendMany(batch.map((p) => p.message));
      } catch (err) {
        if (isUnavailable(err)) {
          for (const p of batch) p.reject(err);
          return;
        }
      }
    }
    // In submission order, so that the answers come in that order too: what the statement stored
    // at once; the rest (a batch of one, a refused or retried message, a failed statement) on its own.
    for (const [i, p] of batch.entries()) {
      const record = records[i];
      if (record !== undefined) {
        p.resolve({ record, duplicate: false });
        continue;
      }
      try {
        p.resolve(await this.store.append(p.message));
      } catch (err) {
        p.reject(err);
      }
    }
  }
}
