import type { User } from "../../gen/parley/auth/v1/auth.js";
import type { Message, Target } from "../../gen/parley/chat/v1/chat.js";
import type { ParleyApi } from "./api.js";
import { ReconnectingClient } from "./reconnecting-client.js";
import { runCommand, within, type Outcome, type SessionContext } from "./terminal-actions.js";
import { parseLine } from "./terminal-commands.js";
import { formatError, formatInbox, formatMessage, formatTarget } from "./terminal-format.js";
import { HistoryPager } from "./terminal-history.js";
import type { TerminalIo } from "./terminal-io.js";
import { ReadReceipts } from "./terminal-read-receipts.js";
import { Throttle } from "./terminal-throttle.js";

/** Typing frames go out at most this often per target while the user types. */
const TYPING_SEND_MS = 3_000;
/** "bob is typing…" shows at most this often per user and conversation. */
const TYPING_SHOW_MS = 5_000;
/** Commands typed during the first replay wait for it this long at most. */
const FIRST_CATCH_UP_MS = 10_000;
/** What the session waits for on the way out: acknowledgements, then the last read receipts. */
const CLOSE_WAIT_MS = 3_000;

/**
 * One logged-in session: the inbox, then the live stream printed above the
 * prompt, and the commands typed at it. It lasts until /quit, /logout, the end
 * of input, or the server refusing the session; server restarts and drains
 * are the ReconnectingClient's business and only show as a line or two.
 */
export class TerminalSession {
  private readonly client: ReconnectingClient;
  private readonly receipts: ReadReceipts;
  private readonly typingShown = new Throttle(TYPING_SHOW_MS);
  private readonly typingSent = new Throttle(TYPING_SEND_MS);
  private readonly stop = new AbortController();
  private readonly context: SessionContext;
  private target: Target | undefined;
  /** Set from the first lost stream until the client has caught up again. */
  private outage = false;
  private caughtUpOnce: () => void = () => {};

  constructor(
    private readonly io: TerminalIo,
    private readonly api: ParleyApi,
    private readonly me: User,
  ) {
    this.client = new ReconnectingClient({ address: api.address, token: api.token ?? "" });
    this.receipts = new ReadReceipts((conversationId, seq) => {
      if (this.client.state !== "live" && this.client.state !== "replaying") return false;
      this.client.markRead(conversationId, seq);
      return true;
    });
    const session = this;
    this.context = {
      io,
      api,
      client: this.client,
      me,
      pager: new HistoryPager(api),
      unacknowledged: new Set(),
      get target() {
        return session.target;
      },
      setTarget: (to) => this.setTarget(to),
    };
  }

  async run(): Promise<Outcome> {
    await this.showInbox();
    const caughtUp = new Promise<void>((resolve) => (this.caughtUpOnce = resolve));
    this.listen();
    this.client.start();
    const aborted = new Promise<void>((resolve) => this.stop.signal.addEventListener("abort", () => resolve(), { once: true }));
    await within(Promise.race([caughtUp, aborted]), FIRST_CATCH_UP_MS);
    const stopTyping = this.io.onTyping((line) => this.onTyping(line));
    this.io.commandPrompt(this.prompt());
    let outcome: Outcome;
    try {
      outcome = await this.readCommands();
    } finally {
      stopTyping();
    }
    await this.close(outcome);
    return outcome;
  }

  private async showInbox(): Promise<void> {
    try {
      this.io.print(formatInbox(await this.api.listConversations()));
    } catch (err) {
      this.io.print(`! could not load the inbox: ${formatError(err)}`);
    }
  }

  private async readCommands(): Promise<Outcome> {
    for (;;) {
      const line = await this.io.nextLine(this.stop.signal);
      if (line === undefined) return this.stop.signal.aborted ? "expired" : "quit";
      const outcome = await runCommand(this.context, parseLine(line));
      if (outcome !== undefined) return outcome;
    }
  }

  private listen(): void {
    const { client, io } = this;
    client.on("message", (message) => this.onMessage(message));
    // A stream opens with every peer's state; print only what changed (a peer never seen counts as offline).
    const known = new Map<string, boolean>();
    client.on("presence", ({ username, online }) => {
      if (this.isMe(username) || (known.get(username) ?? false) === online) return;
      known.set(username, online);
      io.print(`* ${username} is ${online ? "online" : "offline"}`);
    });
    client.on("typing", ({ from, to }) => {
      if (this.isMe(from) || !this.typingShown.take(typingKey(from, to))) return;
      io.print(`* ${from} is typing${to?.group ? ` in #${to.group}` : ""}…`);
    });
    client.on("drain", (reason) => {
      if (!this.outage) io.print(`* server is shutting down${reason ? ` (${reason})` : ""}; reconnecting…`);
      this.outage = true;
    });
    client.on("disconnected", ({ code, details, willRetry }) => {
      if (!willRetry) {
        io.print(`! disconnected for good: ${formatError({ code, details })}; log in again`);
        this.stop.abort();
      } else if (!this.outage) {
        io.print(`* reconnecting… (${formatError({ code, details })})`);
        this.outage = true;
      }
    });
    client.on("caughtUp", () => {
      if (this.outage) io.print("* reconnected");
      this.outage = false;
      this.caughtUpOnce();
    });
  }

  private onMessage(message: Message): void {
    this.io.print(formatMessage(message, this.me.username));
    // Their message ends their typing: the next "is typing" may show at once.
    this.typingShown.reset(typingKey(message.sender, message.to));
    this.receipts.mark(message.conversationId, message.seq);
  }

  /** Sends a typing frame, now and then, while a plain line for the default target is being typed. */
  private onTyping(line: string): void {
    const to = this.target;
    if (to === undefined || to.broadcast || line.trim() === "" || line.startsWith("/")) return;
    if (this.client.state !== "live") return;
    if (this.typingSent.take(formatTarget(to).toLowerCase())) this.client.typing(to);
  }

  private setTarget(to: Target | undefined): void {
    this.target = to;
    this.io.commandPrompt(this.prompt());
  }

  private prompt(): string {
    return this.target ? `${formatTarget(this.target)}> ` : "> ";
  }

  private isMe(username: string): boolean {
    return username.toLowerCase() === this.me.username.toLowerCase();
  }

  /** Lets sends and read receipts finish (briefly), closes the stream, and revokes the token on /logout. */
  private async close(outcome: Outcome): Promise<void> {
    this.stop.abort();
    await within(Promise.allSettled(this.context.unacknowledged), CLOSE_WAIT_MS);
    const receipts = this.receipts.takePending();
    if (outcome !== "expired" && receipts.length > 0) {
      await within(Promise.allSettled(receipts.map((r) => this.api.markRead(r.conversationId, r.seq))), CLOSE_WAIT_MS);
    }
    this.client.removeAllListeners();
    this.client.close();
    if (outcome === "logout") {
      try {
        await this.api.logOut();
        this.io.print("* logged out");
      } catch (err) {
        this.io.print(`! logout failed: ${formatError(err)}`);
      }
    }
  }
}

/** Typing lines are throttled per user and conversation: `bob` for a DM, `bob in #rust` for a group. */
function typingKey(from: string, to: Target | undefined): string {
  return `${from}${to?.group ? ` in #${to.group}` : ""}`.toLowerCase();
}
