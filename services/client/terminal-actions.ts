import type { User } from "../../gen/parley/auth/v1/auth.js";
import type { Target } from "../../gen/parley/chat/v1/chat.js";
import type { ParleyApi } from "./api.js";
import type { ReconnectingClient } from "./reconnecting-client.js";
import type { Command } from "./terminal-commands.js";
import { formatError, formatGroups, formatMessage, formatTarget, formatUnread, HELP } from "./terminal-format.js";
import type { HistoryPage, HistoryPager } from "./terminal-history.js";
import type { TerminalIo } from "./terminal-io.js";

/** How long a command waits for a send's acknowledgement before taking the next line. */
const SEND_WAIT_MS = 5_000;

/** Why a session ends: `quit` leaves the program, `logout` revokes the token, `expired` means the server refused the session. */
export type Outcome = "quit" | "logout" | "expired";

/** What commands work on; the session owns it. */
export interface SessionContext {
  readonly io: TerminalIo;
  readonly api: ParleyApi;
  readonly client: ReconnectingClient;
  readonly me: User;
  readonly pager: HistoryPager;
  /** Where plain lines go; set with /to. */
  readonly target: Target | undefined;
  setTarget(to: Target | undefined): void;
  /** Sends not acknowledged yet: the session waits for them (briefly) before it closes the stream. */
  readonly unacknowledged: Set<Promise<void>>;
}

/** Runs one command. Failures are printed as one line and never end the session; an outcome does. */
export async function runCommand(ctx: SessionContext, command: Command): Promise<Outcome | undefined> {
  try {
    return await dispatch(ctx, command);
  } catch (err) {
    ctx.io.print(`! ${formatError(err)}`);
    return undefined;
  }
}

async function dispatch(ctx: SessionContext, command: Command): Promise<Outcome | undefined> {
  const { io, api } = ctx;
  switch (command.kind) {
    case "empty":
      return;
    case "say":
      if (ctx.target === undefined) {
        io.print("! no default target: use /to <user|#group|*>, or /msg, /g, /all (see /help)");
        return;
      }
      return send(ctx, ctx.target, command.text);
    case "send":
      return send(ctx, command.to, command.text);
    case "setTarget":
      ctx.setTarget(command.to);
      io.print(command.to ? `* plain lines now go to ${formatTarget(command.to)}` : "* default target cleared");
      return;
    case "showTarget":
      io.print(ctx.target ? `* plain lines go to ${formatTarget(ctx.target)}` : "* no default target: /to <user|#group|*> sets one");
      return;
    case "help":
      io.print(HELP);
      return;
    case "create": {
      const group = await api.createGroup(command.group);
      io.print(`* created #${group.name}; you are its first member`);
      return;
    }
    case "join": {
      const group = await api.joinGroup(command.group);
      io.print(`* joined #${group.name} (${group.memberCount} member${group.memberCount === 1 ? "" : "s"})`);
      return;
    }
    case "leave": {
      const group = await api.leaveGroup(command.group);
      if (ctx.target?.group?.toLowerCase() === group.name.toLowerCase()) ctx.setTarget(undefined);
      io.print(`* left #${group.name}`);
      return;
    }
    case "groups": {
      const empty = command.query ? `no groups match "${command.query}"` : "no groups yet: /create one";
      io.print(formatGroups(await api.listGroups(command.query, false), empty));
      return;
    }
    case "mine":
      io.print(formatGroups(await api.listGroups("", true), "you are in no groups: /groups browses them, /join joins one"));
      return;
    case "history":
      printPage(ctx, await ctx.pager.open(command.to, command.limit), false);
      return;
    case "more":
      printPage(ctx, await ctx.pager.more(), true);
      return;
    case "who": {
      const names = (await api.listOnlineUsers()).sort((a, b) => a.localeCompare(b));
      io.print(`* online (${names.length}): ${names.join(", ")}`);
      return;
    }
    case "unread":
      io.print(formatUnread(await api.listConversations()));
      return;
    case "whoami": {
      const user = await api.whoAmI();
      io.print(`* ${user?.username ?? ctx.me.username} (id ${user?.id ?? ctx.me.id}) on ${api.address}`);
      return;
    }
    case "logout":
    case "quit":
      return command.kind;
    case "invalid":
      io.print(`! ${command.message}`);
      return;
    case "unknown":
      io.print(`! unknown command ${command.name}: type /help for the list`);
      return;
  }
}

/**
 * Queues the message on the stream. The message itself shows when the server
 * echoes it back, like anyone else's. While connected, the command waits for
 * the acknowledgement, so that commands piped in run in order; while not, the
 * send waits in the client and goes out on reconnect.
 */
async function send(ctx: SessionContext, to: Target, text: string): Promise<undefined> {
  const sending = ctx.client.send(to, text).then(
    () => undefined,
    (err: unknown) => ctx.io.print(`! not sent to ${formatTarget(to)}: ${formatError(err)}`),
  );
  ctx.unacknowledged.add(sending);
  void sending.then(() => ctx.unacknowledged.delete(sending));
  if (ctx.client.state !== "live") {
    ctx.io.print("* not connected: the message goes out once reconnected");
    return;
  }
  await within(sending, SEND_WAIT_MS);
  return;
}

function printPage(ctx: SessionContext, page: HistoryPage, older: boolean): void {
  const lines = [`--- ${older ? "older messages" : "history"} of ${page.label} ---`];
  if (page.messages.length === 0) lines.push("(no messages)");
  for (const message of page.messages) lines.push(formatMessage(message, ctx.me.username));
  if (page.hasMore) lines.push("--- /more for older messages ---");
  else if (page.messages.length > 0) lines.push("--- start of the conversation ---");
  ctx.io.print(lines.join("\n"));
}

/** Waits for `promise`, but no longer than `ms`. */
export async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
