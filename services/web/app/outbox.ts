// Sending: a message shows as pending at once, goes out by unary Send, and is
// retried with the SAME client_msg_id while the failure is one a retry can get
// past (the server is away or restarting, the rate limit): the server stores
// a client_msg_id once per sender and answers a repeat with the original, so
// a retry whose first attempt did commit still shows the message once. A
// refusal (e.g. INVALID_ARGUMENT for an empty body) is shown with the
// server's message and not retried. Sends go out one at a time, in the order
// typed: one retried through an outage keeps the next behind it, so the
// server stores them in that order too. Unacknowledged sends are kept in
// localStorage (per user), so a reload resumes them with the same ids.
import { Backoff } from "../../client/backoff.js";
import { type Api, errorText, isRetryable } from "./api.js";
import { type ChatKey, targetOf } from "./chat-keys.js";
import type { ChatStore } from "./store.js";
import { type Sleep, randomId, sleep as realSleep } from "./wait.js";

/** One send not acknowledged yet, as kept across a reload. */
interface Unsent {
  clientMsgId: string;
  key: ChatKey;
  title: string;
  body: string;
}

export class Outbox {
  /** The sends typed so far, one after the other; never rejects. */
  private queue: Promise<void> = Promise.resolve();
  private readonly storageKey: string;

  constructor(
    private readonly api: Api,
    private readonly store: ChatStore,
    private readonly signal: AbortSignal,
    private readonly sleep: Sleep = realSleep,
    private readonly storage: Storage = localStorage,
  ) {
    this.storageKey = `parley.unsent.${store.me.toLowerCase()}`;
  }

  /** Queues `body` to the chat `key` (titled `title`), shown as pending at once; resolves once it is acknowledged or refused. */
  send(key: ChatKey, title: string, body: string): Promise<void> {
    const unsent = { clientMsgId: randomId(), key, title, body };
    this.save([...this.unsent(), unsent]);
    return this.enqueue(unsent);
  }

  /** Sends again, in order and with their ids, what a previous page typed and never saw acknowledged. */
  resume(): void {
    for (const unsent of this.unsent()) void this.enqueue(unsent);
  }

  private enqueue(unsent: Unsent): Promise<void> {
    this.store.addPending(unsent.key, unsent.title, { clientMsgId: unsent.clientMsgId, body: unsent.body });
    const sent = this.queue.then(() => this.deliver(unsent.key, unsent.title, unsent.body, unsent.clientMsgId));
    this.queue = sent.catch(() => undefined);
    return sent;
  }

  private unsent(): Unsent[] {
    try {
      const parsed: unknown = JSON.parse(this.storage.getItem(this.storageKey) ?? "[]");
      return Array.isArray(parsed) ? (parsed as Unsent[]) : [];
    } catch {
      return [];
    }
  }

  private save(unsent: Unsent[]): void {
    if (unsent.length === 0) this.storage.removeItem(this.storageKey);
    else this.storage.setItem(this.storageKey, JSON.stringify(unsent));
  }

  /** The send is settled (acknowledged or refused): it is no longer resumed after a reload. */
  private settled(clientMsgId: string): void {
    this.save(this.unsent().filter((u) => u.clientMsgId !== clientMsgId));
  }

  /** Sends until acknowledged, refused, or the page logs out; each retry carries the same client_msg_id. */
  private async deliver(key: ChatKey, title: string, body: string, clientMsgId: string): Promise<void> {
    const backoff = new Backoff({ initialMs: 250, maxMs: 5_000 });
    while (!this.signal.aborted) {
      try {
        const { message } = await this.api.chat.send({ clientMsgId, body, to: { kind: targetOf(key, title) } }, { signal: this.signal });
        if (message) this.store.addMessage(message, true);
        this.settled(clientMsgId);
        return;
      } catch (err) {
        if (this.signal.aborted) return;
        if (!isRetryable(err)) {
          this.settled(clientMsgId);
          return this.store.failPending(key, clientMsgId, errorText(err));
        }
        await this.sleep(backoff.next(), this.signal);
      }
    }
  }
}
