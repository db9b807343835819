// The web app in real headless Chromium against a real Parley (gRPC-web on its
// web port, Postgres): what a person at the page sees. Two browser users chat
// both ways; a browser user and a terminal-client user chat; a wrong password
// shows the server's message; a reload keeps the session and the conversation.
import anyTest, { type TestFn } from "ava";
import type { Browser } from "playwright-core";
import {
  conversationItem,
  connectionStatus,
  keepScreenshot,
  launchBrowser,
  logIn,
  openApp,
  openDirect,
  send,
  signUp,
  waitForMessages,
  waitForText,
} from "./helpers/browser.js";
import { connect, newUser, PASSWORD, uniqueName } from "./helpers/clients.js";
import { freshDatabase } from "./helpers/infra.js";
import { type InProcessServer, NO_RATE_LIMIT, startServer } from "./helpers/servers.js";

const test = anyTest as TestFn<{ server: InProcessServer; url: string; browser: Browser }>;

test.before(async (t) => {
  const server = await startServer({ DATABASE_URL: await freshDatabase(), REDIS_URL: undefined, WEB_PORT: "0", ...NO_RATE_LIMIT });
  t.context.server = server;
  t.context.url = server.webUrl ?? "";
  t.context.browser = await launchBrowser();
});

test.after.always(async (t) => {
  await t.context.browser?.close();
  await t.context.server?.shutdown();
});

test("a wrong password shows the server's message and stays on the log-in form", async (t) => {
  const page = await openApp(t.context.browser, t.context.url);
  const name = uniqueName("pw");
  await signUp(page, name);
  await page.getByRole("button", { name: "Log out" }).click();
  await logIn(page, name, `${PASSWORD}-not`);
  const alert = await waitForText(page.getByRole("alert"), /./);
  // The server's UNAUTHENTICATED text, exactly as the auth service words it for a wrong user or password.
  t.regex(alert, /password/i);
  t.false(await page.getByRole("button", { name: "Log out" }).isVisible());
  await logIn(page, name);
  await page.getByRole("button", { name: "Log out" }).waitFor();
  await page.context().close();
});

test("two browser users chat both ways, with unread counts in the inbox and typing shown", async (t) => {
  const ana = await openApp(t.context.browser, t.context.url);
  const ben = await openApp(t.context.browser, t.context.url);
  const anaName = uniqueName("ana");
  const benName = uniqueName("ben");
  await signUp(ana, anaName);
  await signUp(ben, benName);
  await waitForText(connectionStatus(ana), /^Online$/);

  await openDirect(ana, benName);
  await send(ana, "hello ben");
  await waitForMessages(ana, ["hello ben"]);

  // Ben has not opened the chat: the inbox names it and counts it unread.
  const item = conversationItem(ben, anaName);
  await waitForText(item.locator(".badge"), /^1 unread$/);
  await send(ana, "are you there?");
  await waitForText(item.locator(".badge"), /^2 unread$/);
  await keepScreenshot(ben, "inbox");

  await item.getByRole("button").click();
  await waitForMessages(ben, ["hello ben", "are you there?"]);
  await item.locator(".badge").waitFor({ state: "detached" }); // read as viewed: the count is gone

  // Typing is sent while Ben types and shown to Ana.
  await ben.getByRole("textbox", { name: "Message" }).pressSequentially("yes", { delay: 20 });
  await waitForText(ana.locator(".typing"), new RegExp(`${benName} is typing`));
  await ben.getByRole("button", { name: "Send" }).click();
  await waitForMessages(ana, ["hello ben", "are you there?", "yes"]);
  await waitForMessages(ben, ["hello ben", "are you there?", "yes"]);
  await keepScreenshot(ana, "chat");
  t.pass();
  await ana.context().close();
  await ben.context().close();
});

test("a browser user and a terminal-client user chat both ways", async (t) => {
  const address = t.context.server.address;
  const term = await newUser(address, "term");
  const inbox = await connect(term, address);
  t.teardown(() => inbox.client.close());
  const page = await openApp(t.context.browser, t.context.url);
  const name = uniqueName("web");
  await signUp(page, name);

  await openDirect(page, term.username);
  await send(page, "from the browser");
  await inbox.until(() => inbox.bodies().includes("from the browser"), "the terminal client gets the browser's message");
  t.is(inbox.messages.at(-1)?.sender, name);

  await inbox.client.send({ username: name }, "from the terminal");
  await waitForMessages(page, ["from the browser", "from the terminal"]);
  await page.context().close();
});

test("a reload keeps the session and the open conversation", async (t) => {
  const page = await openApp(t.context.browser, t.context.url);
  const peer = await newUser(t.context.server.address, "peer");
  await signUp(page, uniqueName("rl"));
  await openDirect(page, peer.username);
  await send(page, "before the reload");
  await waitForMessages(page, ["before the reload"]);

  await page.reload();
  await page.getByRole("button", { name: "Log out" }).waitFor();
  await page.getByRole("region", { name: `Chat with ${peer.username}` }).waitFor();
  await waitForMessages(page, ["before the reload"]);
  await send(page, "after the reload");
  await waitForMessages(page, ["before the reload", "after the reload"]);

  // Log out ends the session for good: a reload shows the log-in form.
  await page.getByRole("button", { name: "Log out" }).click();
  await page.reload();
  await page.getByRole("button", { name: "Log in" }).waitFor();
  t.false(await page.getByRole("button", { name: "Log out" }).isVisible());
  await page.context().close();
});

test("a send still pending at a reload goes out after it, with the same id: the peer gets it once", async (t) => {
  const page = await openApp(t.context.browser, t.context.url);
  const peer = await newUser(t.context.server.address, "pend");
  const peerInbox = await connect(peer, t.context.server.address);
  t.teardown(() => peerInbox.client.close());
  await signUp(page, uniqueName("pd"));
  await openDirect(page, peer.username);
  await send(page, "first");
  await waitForMessages(page, ["first"]);
  // Sends fail (the network is away) while one is typed; the page is reloaded before it goes out.
  await page.route("**/parley.chat.v1.ChatService/Send", (route) => route.abort());
  await send(page, "typed before the reload");
  await page.reload();
  await page.unroute("**/parley.chat.v1.ChatService/Send");
  await page.getByRole("region", { name: `Chat with ${peer.username}` }).waitFor();
  await waitForMessages(page, ["first", "typed before the reload"]);
  await peerInbox.until(() => peerInbox.bodies().includes("typed before the reload"), "the peer gets the pending send");
  t.deepEqual(peerInbox.bodies(), ["first", "typed before the reload"]);
  await page.context().close();
});
