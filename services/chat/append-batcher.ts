import { isUnavailable } from "../lib/app-error.js";
import type { AppendResult, MessageStore, NewMessage } from "./message-store.js";

interface Pending {
  message: NewMessage;
  resolve(result: AppendResult): void;
  reject(err: unknown): void;
}

/** The most messages one statement takes. */
const MAX_BATCH = 100;

/**
 * Group commit for sends. Appends of one sender to one conversation queue up
 * while the previous statement is in flight, and the next statement takes
 * them all: a busy stream costs one round-trip per batch, not per message,
 * and its messages keep the order they were submitted in. An idle sender
 * still commits at once (a batch of one). A batch that fails because of one
 * of its messages is settled one by one, so that message alone fails.
 */
export class AppendBatcher {
  private readonly queues = new Map<string, Pending[]>();

  constructor(private readonly store: MessageStore) {}

  /** Resolves once the message is committed, as `MessageStore.append` does. */
  append(message: NewMessage, memberOfGroup: string | undefined): Promise<AppendResult> {
    const key = `${message.senderId}|${message.conversationId}`;
    return new Promise((resolve, reject) => {
      const queue = this.queues.get(key);
      if (queue !== undefined) {
        queue.push({ message, resolve, reject });
        return;
      }
      this.queues.set(key, [{ message, resolve, reject }]);
      void this.flush(key, memberOfGroup);
    });
  }

  private async flush(key: string, memberOfGroup: string | undefined): Promise<void> {
    for (;;) {
      const queue = this.queues.get(key) as Pending[];
      const batch = queue.splice(0, MAX_BATCH);
      if (batch.length === 0) {
        this.queues.delete(key);
        return;
      }
      await this.commit(batch, memberOfGroup);
    }
  }

  /**
   * Commits a batch in one statement when it can. When that statement fails
   * for something about a message (a retried client_msg_id, text Postgres
   * cannot store), nothing of it was stored, so each message is appended on
   * its own, in order: each gets its own outcome, the valid ones consecutive
   * seqs, and none is lost or stored twice. When a dependency is down, every
   * message fails alike (retrying one by one would only wait longer).
   */
  private async commit(batch: Pending[], memberOfGroup: string | undefined): Promise<void> {
    if (batch.length > 1) {
      try {
        const records = await this.store.appendMany(
          batch.map((p) => p.message),
          memberOfGroup,
        );
        for (const [i, p] of batch.entries()) p.resolve(records && { record: records[i], duplicate: false });
        return;
      } catch (err) {
        if (isUnavailable(err)) {
          for (const p of batch) p.reject(err);
          return;
        }
      }
    }
    for (const p of batch) {
      try {
        p.resolve(await this.store.append(p.message, memberOfGroup));
      } catch (err) {
        p.reject(err);
      }
    }
  }
}
