// A server restart in the middle of a browser conversation: the page says it
// is reconnecting, a message typed meanwhile stays pending and goes out once
// the server is back (same client_msg_id), what the peer sent during the gap
// is replayed from the page's cursors, and every message shows exactly once.
// Once with SIGTERM (the pod drains: a `drain` frame, then the stream ends) and
// once with SIGKILL (the socket just dies). Fixed ports, so that the same page
// finds the new process.
import anyTest, { type TestFn } from "ava";
import type { Browser, Page } from "playwright-core";
import { freePort } from "../scripts/local-services.js";
import {
  connectionStatus,
  launchBrowser,
  openApp,
  openDirect,
  send,
  shownMessages,
  signUp,
  waitForMessages,
  waitForText,
} from "./helpers/browser.js";
import { connect, type Inbox, newUser, type TestUser, uniqueName } from "./helpers/clients.js";
import { freshDatabase } from "./helpers/infra.js";
import { type ChildServer, type Env, NO_RATE_LIMIT, spawnServer, stopPod } from "./helpers/servers.js";

const test = anyTest as TestFn<{ browser: Browser; pods: ChildServer[] }>;

test.before(async (t) => {
  t.context.pods = [];
  t.context.browser = await launchBrowser();
});

test.after.always(async (t) => {
  await t.context.browser?.close();
  for (const pod of t.context.pods) await stopPod(pod, 5_000);
});

/**
 * Kills the running pod with `signal`, checks the page says so, types two
 * messages into the gap, and starts a new pod while the page's Subscribe and
 * Send requests are held off (they fail, and the page retries). The caller
 * lets the sends through only after the peer's message committed, and the
 * stream only after the page's own sends were acknowledged: the page then
 * knows seqs above the peer's message before its stream resumes, and the
 * peer's message reaches it only by replay from its cursors.
 */
async function restart(
  t: { context: { pods: ChildServer[] } },
  signal: NodeJS.Signals,
  start: () => Promise<ChildServer>,
  page: Page,
  gapBodies: string[],
): Promise<void> {
  const pod = t.context.pods.at(-1);
  if (!pod) throw new Error("no pod running");
  pod.kill(signal);
  await pod.exited;
  await waitForText(connectionStatus(page), /Reconnecting/);
  await page.route(SUBSCRIBE, (route) => route.abort());
  await page.route(SEND, (route) => route.abort());
  for (const body of gapBodies) await send(page, body);
  const shown = await shownMessages(page);
  for (const body of gapBodies) {
    if (!shown.some((m) => m.body === body && m.pending)) throw new Error(`"${body}" is not shown as pending: ${JSON.stringify(shown)}`);
  }
  t.context.pods.push(await start());
}

const SUBSCRIBE = "**/parley.chat.v1.ChatService/Subscribe";
const SEND = "**/parley.chat.v1.ChatService/Send";

test("after a restart mid-conversation (SIGTERM, then SIGKILL) the page reconnects and shows every message once", async (t) => {
  const [grpcPort, webPort] = [await freePort(), await freePort()];
  const env: Env = { DATABASE_URL: await freshDatabase(), REDIS_URL: undefined, WEB_PORT: String(webPort), ...NO_RATE_LIMIT };
  const start = () => spawnServer(env, grpcPort);
  t.context.pods.push(await start());
  const address = `127.0.0.1:${grpcPort}`;

  const ben: TestUser = await newUser(address, "ben");
  const benInbox: Inbox = await connect(ben, address);
  t.teardown(() => benInbox.client.close());
  const page = await openApp(t.context.browser, `http://127.0.0.1:${webPort}/`);
  await signUp(page, uniqueName("ana"));
  await openDirect(page, ben.username);
  await send(page, "one");
  await benInbox.until(() => benInbox.bodies().includes("one"), "ben gets one");
  await ben.api.send({ username: benInbox.messages[0].sender }, "two", "ben-2");
  const expected = ["one", "two"];
  await waitForMessages(page, expected);

  for (const [signal, n] of [
    ["SIGTERM", 3],
    ["SIGKILL", 5],
  ] as const) {
    const gap = [`typed while down ${n}a`, `typed while down ${n}b`];
    await restart(t, signal, start, page, gap);
    // Ben's message commits first; then the page's two sends (acknowledged above it); then the page's stream resumes.
    await sendRetrying(ben, benInbox.messages[0].sender, `after restart ${n}`, `ben-${n}`);
    await page.unroute(SEND);
    await waitUntil(async () => (await shownMessages(page)).filter((m) => gap.includes(m.body) && !m.pending).length === 2, 20_000);
    await page.unroute(SUBSCRIBE);
    expected.push(...gap, `after restart ${n}`);
    await waitForText(connectionStatus(page), /^Online$/, 20_000);
    // Every message once; the earlier ones in order, the two typed in the gap in the order typed
    // (ben's may commit before, between or after them).
    const shown = await waitForSameSet(page, expected);
    t.deepEqual(shown.slice(0, expected.length - 3), expected.slice(0, -3));
    t.true(shown.indexOf(gap[0]) < shown.indexOf(gap[1]), `typed order kept: ${JSON.stringify(shown)}`);
    expected.splice(0, expected.length, ...shown);
  }
  await benInbox.until(
    () => benInbox.bodies().filter((b) => b.startsWith("typed while down")).length === 4,
    "ben gets each message typed during a restart",
  );
  t.deepEqual(
    benInbox.bodies().filter((b) => b.startsWith("typed while down")),
    ["typed while down 3a", "typed while down 3b", "typed while down 5a", "typed while down 5b"],
  );
});

/** Waits until the page shows exactly the bodies of `expected` (any order), each once and acknowledged; returns them in shown order. */
async function waitForSameSet(page: Page, expected: string[], timeoutMs = 20_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  const want = [...expected].sort().join("\n");
  let shown: { body: string; pending: boolean }[] = [];
  while (Date.now() < deadline) {
    shown = await shownMessages(page);
    if (
      shown.every((m) => !m.pending) &&
      shown
        .map((m) => m.body)
        .sort()
        .join("\n") === want
    )
      return shown.map((m) => m.body);
    await page.waitForTimeout(50);
  }
  throw new Error(`timed out waiting for ${JSON.stringify(expected)} once each; shown: ${JSON.stringify(shown)}`);
}

/** Ben's unary send, retried with the same client_msg_id while his channel reconnects to the new pod. */
async function sendRetrying(ben: TestUser, to: string, body: string, clientMsgId: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await ben.api.send({ username: to }, body, clientMsgId);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Polls `check` every 50 ms until it holds; throws after `timeoutMs`. */
async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the page's sends to be acknowledged");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
