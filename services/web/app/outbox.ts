// Sending: a message shows as pending at once, goes out by unary Send, and is
// retried with the SAME client_msg_id while the failure is one a retry can get
// past (the server is away or restarting, the rate limit): the server stores
// a client_msg_id once per sender and answers a repeat with the original, so
// a retry whose first attempt did commit still shows the message once. A
// refusal (e.g. INVALID_ARGUMENT for an empty body) is shown with the
// server's message and not retried. Sends go out one at a time, in the order
// typed: one retried through an outage keeps the next behind it, so the
// server stores them in that order too.
import { Backoff } from "../../client/backoff.js";
import { type Api, errorText, isRetryable } from "./api.js";
import { type ChatKey, targetOf } from "./chat-keys.js";
import type { ChatStore } from "./store.js";
import { type Sleep, randomId, sleep as realSleep } from "./wait.js";

export class Outbox {
  /** The sends typed so far, one after the other; never rejects. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly api: Api,
    private readonly store: ChatStore,
    private readonly signal: AbortSignal,
    private readonly sleep: Sleep = realSleep,
  ) {}

  /** Queues `body` to the chat `key` (titled `title`), shown as pending at once; resolves once it is acknowledged or refused. */
  send(key: ChatKey, title: string, body: string): Promise<void> {
    const clientMsgId = randomId();
    this.store.addPending(key, title, { clientMsgId, body });
    const sent = this.queue.then(() => this.deliver(key, title, body, clientMsgId));
    this.queue = sent.catch(() => undefined);
    return sent;
  }

  /** Sends until acknowledged, refused, or the page logs out; each retry carries the same client_msg_id. */
  private async deliver(key: ChatKey, title: string, body: string, clientMsgId: string): Promise<void> {
    const backoff = new Backoff({ initialMs: 250, maxMs: 5_000 });
    while (!this.signal.aborted) {
      try {
        const { message } = await this.api.chat.send({ clientMsgId, body, to: { kind: targetOf(key, title) } }, { signal: this.signal });
        if (message) this.store.addMessage(message, true);
        return;
      } catch (err) {
        if (this.signal.aborted) return;
        if (!isRetryable(err)) return this.store.failPending(key, clientMsgId, errorText(err));
        await this.sleep(backoff.next(), this.signal);
      }
    }
  }
}
