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

/**
 * Waits on state that event handlers fill in: `until(check)` resolves as soon
 * as `check` holds, re-checked each time the owner calls `wake()` after an
 * update, so there is no polling delay. It exists so that the stream recorders
 * of the tests (Inbox here, RawStream in raw-stream.ts) and `pollUntil` wait,
 * time out and fail alike: a timeout names what was awaited, plus a snapshot
 * of the state from `describe`; a `check` that throws rejects at once.
 */
export class Waiters {
  private readonly pending = new Set<() => void>();

  constructor(private readonly describe?: () => string) {}

  /** Resolves once `check` holds; rejects with `what` after `timeoutMs`, or with what `check` threw. */
  until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (error?: Error) => {
        settled = true;
        clearTimeout(timer);
        this.pending.delete(attempt);
        if (error) reject(error);
        else resolve();
      };
      const attempt = () => {
        if (settled) return;
        try {
          if (check()) settle();
        } catch (err) {
          settle(err instanceof Error ? err : new Error(String(err)));
        }
      };
      attempt();
      if (settled) return;
      this.pending.add(attempt);
      timer = setTimeout(() => {
        const detail = this.describe?.();
        settle(new Error(`timed out waiting for ${what}${detail === undefined ? "" : `; ${detail}`}`));
      }, timeoutMs);
    });
  }

  /** Re-runs every pending check: call it after each update to the state they read. */
  wake(): void {
    for (const attempt of [...this.pending]) attempt();
  }
}

/** Everything a stream delivered, and a way to wait for more. */
export class Inbox {
  readonly messages: Message[] = [];
  readonly presence: PresenceEvent[] = [];
  readonly typing: TypingEvent[] = [];
  /**
   * Every message and caught_up in the order the client emitted them, from the
   * first frame: where caught_up falls shows what was replayed and what came live.
   */
  readonly log: (Message | "caught_up")[] = [];
  caughtUp = 0;
  private readonly waiters = new Waiters(() => `got ${JSON.stringify(this.bodies())}`);

  constructor(readonly client: ReconnectingClient) {
    client.on("message", (m) =>
      this.push(() => {
        this.messages.push(m);
        this.log.push(m);
      }),
    );
    client.on("presence", (p) => this.push(() => this.presence.push(p)));
    client.on("typing", (t) => this.push(() => this.typing.push(t)));
    client.on("caughtUp", () =>
      this.push(() => {
        this.caughtUp += 1;
        this.log.push("caught_up");
      }),
    );
  }

  bodies(conversationId?: string): string[] {
    return this.messages.filter((m) => conversationId === undefined || m.conversationId === conversationId).map((m) => m.body);
  }

  /** Resolves once `check` holds; rejects with `what` after `timeoutMs`. */
  until(check: () => boolean, what = "condition", timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(check, what, timeoutMs);
  }

  private push(update: () => unknown): void {
    update();
    this.waiters.wake();
  }
}

/**
 * A reconnecting client for `user` with the tests' short backoff, and its
 * inbox, not started yet: listeners added before `inbox.client.start()` see
 * every event from the first frame on.
 */
export function inboxFor(user: TestUser, address: string | string[], options: Partial<ReconnectingClientOptions> = {}): Inbox {
  return new Inbox(new ReconnectingClient({ address, token: user.token, backoff: { initialMs: 50, maxMs: 1000 }, ...options }));
}

/** A started reconnecting client for `user`, with its inbox; resolves once caught up (within `timeoutMs`). */
export async function connect(
  user: TestUser,
  address: string | string[],
  options: Partial<ReconnectingClientOptions> = {},
  timeoutMs = 10_000,
): Promise<Inbox> {
  const inbox = inboxFor(user, address, options);
  inbox.client.start();
  await inbox.until(() => inbox.caughtUp > 0, `${user.username} caught up`, timeoutMs);
  return inbox;
}

/**
 * Waits for `check` on state that nothing wakes a Waiters for (counters a send
 * loop updates, arrays filled by plain listeners) by re-checking it every
 * `pollMs`; times out and fails like Inbox.until.
 */
export async function pollUntil(check: () => boolean, what: string, timeoutMs = 10_000, pollMs = 10): Promise<void> {
  const waiters = new Waiters();
  const poll = setInterval(() => waiters.wake(), pollMs);
  try {
    await waiters.until(check, what, timeoutMs);
  } finally {
    clearInterval(poll);
  }
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
