import test from "ava";
import { status } from "@grpc/grpc-js";
import { HISTORY_PAGE, parseLine, parseTarget, type Command } from "../services/client/terminal-commands.js";
import { conversationLabel, formatError, formatMessage, sanitize } from "../services/client/terminal-format.js";

const isInvalid = (command: Command) => command.kind === "invalid";

test("blank lines do nothing", (t) => {
  t.deepEqual(parseLine(""), { kind: "empty" });
  t.deepEqual(parseLine("   \t "), { kind: "empty" });
});

test("a plain line is said to the default target, trimmed", (t) => {
  t.deepEqual(parseLine("  hello there  "), { kind: "say", text: "hello there" });
});

test("a line starting with // says a line starting with /", (t) => {
  t.deepEqual(parseLine("//shrug"), { kind: "say", text: "/shrug" });
});

test("bye and /quit leave, with their aliases", (t) => {
  for (const line of ["bye", "BYE", " bye ", "/quit", "/exit", "/bye", "/q", "/QUIT"]) {
    t.deepEqual(parseLine(line), { kind: "quit" }, line);
  }
  t.deepEqual(parseLine("bye everyone"), { kind: "say", text: "bye everyone" });
});

test("commands without arguments", (t) => {
  for (const kind of ["help", "mine", "more", "who", "unread", "whoami", "logout"] as const) {
    t.deepEqual(parseLine(`/${kind}`), { kind });
  }
  t.deepEqual(parseLine("/h"), { kind: "help" });
  t.deepEqual(parseLine("/?"), { kind: "help" });
});

test("/msg and /dm send a direct message, keeping the text's inner spacing", (t) => {
  t.deepEqual(parseLine("/msg bob hello  there"), { kind: "send", to: { username: "bob" }, text: "hello  there" });
  t.deepEqual(parseLine("/dm @bob hi"), { kind: "send", to: { username: "bob" }, text: "hi" });
  t.deepEqual(parseLine("/MSG Bob.Smith-2 hi"), { kind: "send", to: { username: "Bob.Smith-2" }, text: "hi" });
});

test("/msg needs a valid user and some text", (t) => {
  for (const line of ["/msg", "/msg bob", "/msg bob    ", "/msg bo hi", "/msg bob! hi", "/msg #rust hi", `/msg ${"x".repeat(33)} hi`]) {
    t.true(isInvalid(parseLine(line)), line);
  }
  const command = parseLine("/msg bob");
  t.true(command.kind === "invalid" && command.message.includes("/msg <user> <text>"));
});

test("/g sends to a group, with or without #", (t) => {
  t.deepEqual(parseLine("/g rust hi all"), { kind: "send", to: { group: "rust" }, text: "hi all" });
  t.deepEqual(parseLine("/g #rust hi"), { kind: "send", to: { group: "rust" }, text: "hi" });
  t.true(isInvalid(parseLine("/g rust")));
  t.true(isInvalid(parseLine("/g")));
  t.true(isInvalid(parseLine("/g r hi")));
});

test("/all broadcasts", (t) => {
  t.deepEqual(parseLine("/all hello world"), { kind: "send", to: { broadcast: true }, text: "hello world" });
  t.true(isInvalid(parseLine("/all")));
  t.true(isInvalid(parseLine("/all   ")));
});

test("/to sets, shows and clears the default target", (t) => {
  t.deepEqual(parseLine("/to bob"), { kind: "setTarget", to: { username: "bob" } });
  t.deepEqual(parseLine("/to #rust"), { kind: "setTarget", to: { group: "rust" } });
  t.deepEqual(parseLine("/to *"), { kind: "setTarget", to: { broadcast: true } });
  t.deepEqual(parseLine("/to"), { kind: "showTarget" });
  t.deepEqual(parseLine("/to -"), { kind: "setTarget", to: undefined });
  t.true(isInvalid(parseLine("/to #")));
  t.true(isInvalid(parseLine("/to a b")));
});

test("/create, /join and /leave take exactly one valid group name", (t) => {
  t.deepEqual(parseLine("/create rust"), { kind: "create", group: "rust" });
  t.deepEqual(parseLine("/join #Rust"), { kind: "join", group: "Rust" });
  t.deepEqual(parseLine("/leave rust_lang"), { kind: "leave", group: "rust_lang" });
  for (const line of ["/create", "/join a b", "/leave ab", "/create no spaces allowed", "/create bad/name"]) {
    t.true(isInvalid(parseLine(line)), line);
  }
});

test("/groups takes an optional query", (t) => {
  t.deepEqual(parseLine("/groups"), { kind: "groups", query: "" });
  t.deepEqual(parseLine("/groups ru"), { kind: "groups", query: "ru" });
});

test("/history takes a conversation and an optional count", (t) => {
  t.deepEqual(parseLine("/history bob"), { kind: "history", to: { username: "bob" }, limit: HISTORY_PAGE });
  t.deepEqual(parseLine("/history #rust 5"), { kind: "history", to: { group: "rust" }, limit: 5 });
  t.deepEqual(parseLine("/history broadcast 200"), { kind: "history", to: { broadcast: true }, limit: 200 });
  t.deepEqual(parseLine("/history * 1"), { kind: "history", to: { broadcast: true }, limit: 1 });
  t.deepEqual(parseLine("/history @broadcast"), { kind: "history", to: { username: "broadcast" }, limit: HISTORY_PAGE });
  for (const line of [
    "/history",
    "/history bob 0",
    "/history bob 201",
    "/history bob -1",
    "/history bob 2.5",
    "/history bob ten",
    "/history bob 5 6",
  ]) {
    t.true(isInvalid(parseLine(line)), line);
  }
});

test("an unknown command names itself", (t) => {
  t.deepEqual(parseLine("/frobnicate now"), { kind: "unknown", name: "/frobnicate" });
  t.deepEqual(parseLine("/"), { kind: "unknown", name: "/" });
});

test("parseTarget reads users, groups and broadcast", (t) => {
  t.deepEqual(parseTarget("bob"), { username: "bob" });
  t.deepEqual(parseTarget("@bob"), { username: "bob" });
  t.deepEqual(parseTarget("#rust"), { group: "rust" });
  t.deepEqual(parseTarget("*"), { broadcast: true });
  t.deepEqual(parseTarget("Broadcast"), { broadcast: true });
  t.is(parseTarget("#"), undefined);
  t.is(parseTarget("b"), undefined);
});

test("a message is labelled by its conversation, whoever sent it", (t) => {
  const dm = { id: "1", conversationId: "dm:1:2", seq: 1, body: "hi", sentAt: new Date(2024, 0, 2, 9, 5), clientMsgId: "c" };
  t.is(conversationLabel({ ...dm, sender: "bob", to: { username: "alice" } }, "alice"), "bob");
  t.is(conversationLabel({ ...dm, sender: "alice", to: { username: "bob" } }, "Alice"), "bob");
  t.is(conversationLabel({ ...dm, sender: "bob", to: { group: "rust" } }, "alice"), "#rust");
  t.is(conversationLabel({ ...dm, sender: "bob", to: { broadcast: true } }, "alice"), "broadcast");
  const line = formatMessage({ ...dm, sender: "bob", to: { group: "rust" } }, "alice", new Date(2024, 0, 2, 12));
  t.is(line, "09:05 [#rust] bob: hi");
  t.is(formatMessage({ ...dm, sender: "bob", to: { group: "rust" } }, "alice", new Date(2024, 0, 3)), "2024-01-02 09:05 [#rust] bob: hi");
});

test("control characters in a body cannot reach the terminal", (t) => {
  t.is(sanitize("a\u001b[2Jb\u0007\r\nc\td"), "a\uFFFD[2Jb\uFFFD\nc\td");
});

test("errors print as the status name and details", (t) => {
  t.is(formatError({ code: status.NOT_FOUND, details: 'no user named "zed"' }), 'NOT_FOUND: no user named "zed"');
  t.is(formatError(new Error("no conversation with bob yet")), "no conversation with bob yet");
});
