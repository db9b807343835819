import { status } from "@grpc/grpc-js";
import { ConversationKind, type Conversation, type Group, type Message, type Target } from "../../gen/parley/chat/v1/chat.js";

/** What /help prints. */
export const HELP = `Commands:
  /msg <user> <text>        direct message (alias /dm)
  /g <group> <text>         message a group you belong to
  /all <text>               broadcast to everyone
  /to <user|#group|*>       default target for plain lines (/to - clears, /to shows it)
  /create <group>           create a group (you join it)
  /groups [query]           browse groups
  /mine                     the groups you belong to
  /join <group>  /leave <group>
  /history <user|#group|broadcast> [n]   newest n messages; /more pages back
  /who                      who is online
  /unread                   conversations with unread messages
  /whoami                   your account
  /logout                   log out and log in again
  /quit or bye              leave
Plain lines go to the /to target; start a line with // to say something that begins with /.`;

/** How a target reads on screen and in the prompt: `bob`, `#rust` or `broadcast`. */
export function formatTarget(to: Target | undefined): string {
  if (to?.username) return to.username;
  if (to?.group) return `#${to.group}`;
  return "broadcast";
}

/**
 * The conversation a message belongs to, as the user thinks of it: the other
 * person for a DM (whichever side sent it), `#group`, or `broadcast`.
 */
export function conversationLabel(message: Message, me: string): string {
  if (message.to?.username !== undefined && message.sender.toLowerCase() !== me.toLowerCase()) return message.sender;
  return formatTarget(message.to);
}

/** `12:03 [bob] bob: hi`; older than today shows the date too. Further lines of a body are indented. */
export function formatMessage(message: Message, me: string, now: Date = new Date()): string {
  const time = formatTime(message.sentAt ?? now, now);
  const head = `${time} [${conversationLabel(message, me)}] ${message.sender}: `;
  return (
    head +
    sanitize(message.body)
      .split("\n")
      .join(`\n${" ".repeat(Math.min(head.length, 24))}`)
  );
}

/** `HH:MM` today, `YYYY-MM-DD HH:MM` before, in local time. */
function formatTime(at: Date, now: Date = new Date()): string {
  const hhmm = `${pad(at.getHours())}:${pad(at.getMinutes())}`;
  const sameDay = at.getFullYear() === now.getFullYear() && at.getMonth() === now.getMonth() && at.getDate() === now.getDate();
  return sameDay ? hhmm : `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${hhmm}`;
}

/** A conversation's title as shown in lists: groups get their `#`. */
function conversationTitle(conversation: Conversation): string {
  return conversation.kind === ConversationKind.CONVERSATION_KIND_GROUP ? `#${conversation.title}` : conversation.title;
}

/** The inbox after login: every conversation, with its unread count. */
export function formatInbox(conversations: Conversation[]): string {
  if (conversations.length === 0) return "Inbox: no conversations yet.";
  const width = Math.max(...conversations.map((c) => conversationTitle(c).length));
  const rows = conversations.map((c) => `  ${conversationTitle(c).padEnd(width)}  ${c.unread > 0 ? `${c.unread} unread` : "-"}`);
  return ["Inbox:", ...rows].join("\n");
}

/** /unread: only the conversations with something unread. */
export function formatUnread(conversations: Conversation[]): string {
  const unread = conversations.filter((c) => c.unread > 0);
  if (unread.length === 0) return "No unread messages.";
  const width = Math.max(...unread.map((c) => conversationTitle(c).length));
  return ["Unread:", ...unread.map((c) => `  ${conversationTitle(c).padEnd(width)}  ${c.unread}`)].join("\n");
}

/** /groups and /mine: name, member count, and whether you are in. */
export function formatGroups(groups: Group[], empty: string): string {
  if (groups.length === 0) return empty;
  const names = groups.map((g) => `#${g.name}`);
  const counts = groups.map((g) => `${g.memberCount} member${g.memberCount === 1 ? "" : "s"}`);
  const nameWidth = Math.max(...names.map((n) => n.length));
  const countWidth = Math.max(...counts.map((c) => c.length));
  return groups.map((g, i) => `  ${names[i].padEnd(nameWidth)}  ${g.isMember ? `${counts[i].padEnd(countWidth)}  (member)` : counts[i]}`).join("\n");
}

/** One line for any failure: `NOT_FOUND: no user named "zed"` for gRPC errors, the message otherwise. */
export function formatError(err: unknown): string {
  if (typeof err === "object" && err !== null && typeof (err as { code?: unknown }).code === "number") {
    const { code, details, reason, message } = err as { code: number; details?: string; reason?: string; message?: string };
    const text = details ?? reason ?? message ?? "";
    return `${status[code] ?? `code ${code}`}: ${text}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Control characters in a body could move the cursor or recolour the terminal; show them as U+FFFD instead. */
export function sanitize(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing control characters is the point
  return text.replace(/\r\n?/g, "\n").replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "\uFFFD");
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}
