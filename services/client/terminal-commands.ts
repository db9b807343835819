import type { Target } from "../../gen/parley/chat/v1/chat.js";
import { HISTORY_MAX_LIMIT, NAME_PATTERN, NAME_RULE } from "../lib/contract.js";

/** The page size of /history when no count is given: about a screenful (the server's own default, 50, is more than a screen). */
export const HISTORY_PAGE = 20;

/** What one typed line asks for. Parsing is pure, so every command is unit-tested without a server. */
export type Command =
  | { kind: "empty" }
  /** A plain line, for the default target set with /to. */
  | { kind: "say"; text: string }
  | { kind: "send"; to: Target; text: string }
  /** `/to x` sets the default target, `/to -` clears it (to: undefined). */
  | { kind: "setTarget"; to: Target | undefined }
  | { kind: "showTarget" }
  | { kind: "create" | "join" | "leave"; group: string }
  | { kind: "groups"; query: string }
  | { kind: "history"; to: Target; limit: number }
  | { kind: "help" | "mine" | "more" | "who" | "unread" | "whoami" | "logout" | "quit" }
  /** A known command with bad arguments: `message` says what is wrong and shows the usage. */
  | { kind: "invalid"; message: string }
  | { kind: "unknown"; name: string };

const ALIASES: Record<string, string> = {
  "/dm": "/msg",
  "/h": "/help",
  "/?": "/help",
  "/exit": "/quit",
  "/bye": "/quit",
  "/q": "/quit",
};

const USAGE: Record<string, string> = {
  "/msg": "/msg <user> <text>",
  "/g": "/g <group> <text>",
  "/all": "/all <text>",
  "/to": "/to <user|#group|*>  (or /to - to clear)",
  "/create": "/create <group>",
  "/join": "/join <group>",
  "/leave": "/leave <group>",
  "/history": `/history <user|#group|broadcast> [n]  (n from 1 to ${HISTORY_MAX_LIMIT})`,
};

/** Parses one typed line. Never throws: bad input comes back as `invalid` or `unknown`. */
export function parseLine(line: string): Command {
  const trimmed = line.trim();
  if (trimmed === "") return { kind: "empty" };
  if (trimmed.toLowerCase() === "bye") return { kind: "quit" };
  // "//text" says "/text" to the default target instead of running a command.
  if (trimmed.startsWith("//")) return { kind: "say", text: trimmed.slice(1) };
  if (!trimmed.startsWith("/")) return { kind: "say", text: trimmed };

  const [word, rest] = splitWord(trimmed);
  const lowered = word.toLowerCase();
  const name = ALIASES[lowered] ?? lowered;
  switch (name) {
    case "/help":
    case "/mine":
    case "/more":
    case "/who":
    case "/unread":
    case "/whoami":
    case "/logout":
    case "/quit":
      return { kind: name.slice(1) as "help" };
    case "/msg":
      if (rest.startsWith("#")) return invalid(name, "/msg is for users; write to a group with /g");
      return parseSend(name, rest, (who) => userTarget(who));
    case "/g":
      return parseSend(name, rest, (group) => groupTarget(group));
    case "/all":
      return rest === "" ? invalid(name, "the message is empty") : { kind: "send", to: { broadcast: true }, text: rest };
    case "/to":
      if (rest === "") return { kind: "showTarget" };
      if (rest === "-") return { kind: "setTarget", to: undefined };
      return withTarget(name, rest, (to) => ({ kind: "setTarget", to }));
    case "/create":
    case "/join":
    case "/leave":
      return parseGroupCommand(name, rest);
    case "/groups":
      return { kind: "groups", query: rest };
    case "/history":
      return parseHistory(name, rest);
    default:
      return { kind: "unknown", name: word };
  }
}

/**
 * Reads a target: `*` or `broadcast` is everyone, `#name` a group, and `name`
 * or `@name` a user (`@` reaches a user who is actually called "broadcast").
 * Returns undefined when the name breaks the naming rule.
 */
export function parseTarget(text: string): Target | undefined {
  if (text === "*" || text.toLowerCase() === "broadcast") return { broadcast: true };
  if (text.startsWith("#")) return groupTarget(text.slice(1));
  return userTarget(text.startsWith("@") ? text.slice(1) : text);
}

function userTarget(name: string): Target | undefined {
  const bare = name.startsWith("@") ? name.slice(1) : name;
  return NAME_PATTERN.test(bare) ? { username: bare } : undefined;
}

function groupTarget(name: string): Target | undefined {
  const bare = name.startsWith("#") ? name.slice(1) : name;
  return NAME_PATTERN.test(bare) ? { group: bare } : undefined;
}

function parseSend(name: string, rest: string, target: (word: string) => Target | undefined): Command {
  const [first, text] = splitWord(rest);
  if (first === "" || text === "") return invalid(name, "name a recipient and write a message");
  return withTarget(name, first, (to) => ({ kind: "send", to, text }), target);
}

function parseGroupCommand(name: "/create" | "/join" | "/leave", rest: string): Command {
  const [group, extra] = splitWord(rest);
  if (group === "" || extra !== "") return invalid(name, "give exactly one group name");
  const to = groupTarget(group);
  if (to?.group === undefined) return invalid(name, `"${group}" is not a valid group name`);
  return { kind: name.slice(1) as "create", group: to.group };
}

function parseHistory(name: string, rest: string): Command {
  const [first, second] = splitWord(rest);
  if (first === "" || /\s/.test(second)) return invalid(name, "name one conversation and, optionally, a count");
  let limit = HISTORY_PAGE;
  if (second !== "") {
    if (!/^\d+$/.test(second) || Number(second) < 1 || Number(second) > HISTORY_MAX_LIMIT) {
      return invalid(name, `"${second}" is not a count from 1 to ${HISTORY_MAX_LIMIT}`);
    }
    limit = Number(second);
  }
  return withTarget(name, first, (to) => ({ kind: "history", to, limit }));
}

function withTarget(name: string, text: string, build: (to: Target) => Command, read: (text: string) => Target | undefined = parseTarget): Command {
  const to = read(text);
  if (to === undefined) return invalid(name, `"${text}" is not a valid name (${NAME_RULE})`);
  return build(to);
}

function invalid(name: string, problem: string): Command {
  return { kind: "invalid", message: `${problem}; usage: ${USAGE[name] ?? name}` };
}

/** Splits off the first word; the rest keeps its inner spacing. */
function splitWord(text: string): [string, string] {
  const match = /^(\S*)\s*([\s\S]*)$/.exec(text.trim()) as RegExpExecArray;
  return [match[1], match[2].trim()];
}
