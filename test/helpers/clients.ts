// Users and clients as a test sees them: sign-up through the real AuthService,
// streams through the reconnecting client, and waiting on what arrives.
import { randomBytes } from "node:crypto";
import type { Message, PresenceEvent, TypingEvent } from "../../gen/parley/chat/v1/chat.js";
import { ParleyApi } from "../../services/client/api.js";
import { ReconnectingClient, type ReconnectingClientOptions } from "../../services/client/reconnecting-client.js";

export const PASSWORD = "correct-horse";

export interface TestUser {
  api: ParleyApi;
  username: string;
  token: string;
  id: string;
}

/** A unique name that passes validation: `prefix` plus random hex, at most 32 characters. */
export function uniqueName(prefix = "u"): string {
  return `${prefix}${randomBytes(5).toString("hex")}`.slice(0, 32);
}

export async function newUser(address: string, prefix = "u"): Promise<TestUser> {
  const api = new ParleyApi(address);
  const username = uniqueName(prefix);
  const grant = await api.signUp(username, PASSWORD);
  return { api, username, token: grant.token, id: grant.user?.id ?? "" };
}

/** Everything a stream delivered, and a way to wait for more. */
export class Inbox {
  readonly messages: Message[] = [];
  readonly presence: PresenceEvent[] = [];
  readonly typing: TypingEvent[] = [];
  caughtUp = 0;
  private readonly waiters = new Set<() => void>();

  constructor(readonly client: ReconnectingClient) {
    client.on("message", (m) => this.push(() => this.messages.push(m)));
    client.on("presence", (p) => this.push(() => this.presence.push(p)));
    client.on("typing", (t) => this.push(() => this.typing.push(t)));
    client.on("caughtUp", () => this.push(() => (this.caughtUp += 1)));
  }

  bodies(conversationId?: string): string[] {
    return this.messages.filter((m) => conversationId === undefined || m.conversationId === conversationId).map((m) => m.body);
  }

  /** Resolves once `check` holds; rejects with `what` after `timeoutMs`. */
  until(check: () => boolean, what = "condition", timeoutMs = 10_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.bodies())}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private push(update: () => unknown): void {
    update();
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** A started reconnecting client for `user`, with its inbox; resolves once caught up. */
export async function connect(
  user: TestUser,
  address: string | string[],
  options: Partial<ReconnectingClientOptions> = {},
): Promise<Inbox> {
  const client = new ReconnectingClient({ address, token: user.token, backoff: { initialMs: 50, maxMs: 1000 }, ...options });
  const inbox = new Inbox(client);
  client.start();
  await inbox.until(() => inbox.caughtUp > 0, `${user.username} caught up`);
  return inbox;
}

/** Polls `check` until it holds (for state read through unary calls). */
export async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms; last value ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
