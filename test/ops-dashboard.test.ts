// The operations dashboard (/ops) in real headless Chromium, against a real
// cluster: two pods on one Redis and one Postgres, each with its /metrics,
// users with live Connect streams on both, sends going on, and the bundled
// controller reporting to the scaler. What the page shows is compared with
// what the test set up and with what each pod's /metrics says; a pod that
// drains shows as draining and then leaves; the controller's decision shows
// with its reason. The page's screenshot is kept (test-artifacts/, and
// docs/ops-dashboard.png for the README, when UPDATE_DOCS_SCREENSHOTS=1).
import { copyFileSync, mkdirSync } from "node:fs";
import { connect as http2Connect } from "node:http2";
import anyTest, { type TestFn } from "ava";
import type { Browser, Page } from "playwright-core";
import { RecordScalingDecisionRequestSchema } from "../gen/es/parley/ops/v1/ops_pb.js";
import { freePort, type LocalRedis } from "../scripts/local-services.js";
import { keepScreenshot, launchBrowser, openApp, waitForText } from "./helpers/browser.js";
import { connect, eventually, type Inbox, newUser, type TestUser } from "./helpers/clients.js";
import { DEPLOYMENT, NAMESPACE, startController } from "./helpers/controller.js";
import { grpcWebHeaders, messageFrame, rawRequest } from "./helpers/grpc-web-raw.js";
import { freshDatabase, freshRedis, scratchDir } from "./helpers/infra.js";
import { LocalScaleApiServer } from "./helpers/scale-api.js";
import { SendLoop } from "./helpers/send-loop.js";
import { type InProcessServer, NO_RATE_LIMIT, startServer } from "./helpers/servers.js";

interface Context {
  redis: LocalRedis;
  a: InProcessServer;
  b: InProcessServer;
  browser: Browser;
  page: Page;
  inboxes: Inbox[];
  users: TestUser[];
  loops: SendLoop[];
}
const test = anyTest as TestFn<Context>;

/** Users with a live stream on each pod. */
const ON_A = 3;
const ON_B = 2;

test.before(async (t) => {
  const [databaseUrl, redis] = await Promise.all([freshDatabase(), freshRedis()]);
  t.context.redis = redis;
  const env = { DATABASE_URL: databaseUrl, REDIS_URL: redis.url, ...NO_RATE_LIMIT };
  t.context.a = await startServer({ ...env, POD_NAME: "ops-a", WEB_PORT: "0", METRICS_PORT: String(await freePort()) });
  // A long drain deadline: the drain test holds a call open and lets it go itself.
  t.context.b = await startServer({ ...env, POD_NAME: "ops-b", METRICS_PORT: String(await freePort()), SHUTDOWN_TIMEOUT_SECONDS: "60" });
  t.context.browser = await launchBrowser();
  t.context.page = await openApp(t.context.browser, `${t.context.a.webUrl}/ops`);
  t.context.inboxes = [];
  t.context.users = [];
  t.context.loops = [];
});

test.after.always(async (t) => {
  await Promise.all((t.context.loops ?? []).map((loop) => loop.stop()));
  for (const inbox of t.context.inboxes ?? []) inbox.client.close();
  for (const user of t.context.users ?? []) user.api.close();
  await t.context.browser?.close();
  await Promise.all([t.context.a?.shutdown(), t.context.b?.shutdown()]);
  await t.context.redis?.stop();
});

/** What the page shows, read in one go through its accessible names. */
interface Shown {
  online: string;
  messagesPerSecond: string;
  latency: string;
  replicas: string;
  pods: { name: string; status: string; streams: number; messagesPerSecond: number; postgres: string; redis: string }[];
  decisions: string[];
}

async function shown(page: Page): Promise<Shown> {
  const stat = (name: string) => page.getByRole("region", { name }).locator(".value").textContent();
  const [online, messagesPerSecond, latency, replicas] = await Promise.all(
    ["Online users", "Messages per second", "Send latency", "Replicas"].map((name) => stat(name).then((text) => text ?? "")),
  );
  const pods = await page
    .getByRole("table", { name: "Pods" })
    .locator("tbody tr:has(th)")
    .evaluateAll((rows) =>
      rows.map((row) => {
        const cells = [...row.querySelectorAll("td")].map((td) => td.textContent ?? "");
        return {
          name: row.querySelector("th")?.textContent ?? "",
          status: cells[1] ?? "",
          streams: Number(cells[2]),
          messagesPerSecond: Number(cells[3]),
          postgres: cells[4] ?? "",
          redis: cells[5] ?? "",
        };
      }),
    );
  const list = page.getByRole("list", { name: "Scaling decisions" });
  const decisions = (await list.count()) === 0 ? [] : await list.getByRole("listitem").allTextContents();
  return { online, messagesPerSecond, latency, replicas, pods, decisions };
}

/** Polls the page until `check` holds; fails with the last reading. */
const pageUntil = (page: Page, check: (s: Shown) => boolean, timeoutMs = 15_000) => eventually(() => shown(page), check, timeoutMs);

/** One pod's /metrics: the sum of each series' samples, by metric name (labels summed over). */
async function scrape(server: InProcessServer): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
  const sums = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^([a-z_:]+)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (match) sums.set(match[1] as string, (sums.get(match[1] as string) ?? 0) + Number(match[2]));
  }
  return sums;
}

test.serial("the page shows the cluster's users, each pod's streams and the traffic, as /metrics does", async (t) => {
  const { a, b, page } = t.context;
  for (const [server, n] of [
    [a, ON_A],
    [b, ON_B],
  ] as const) {
    for (let i = 0; i < n; i++) {
      const user = await newUser(server.address, "ops");
      t.context.users.push(user);
      t.context.inboxes.push(await connect(user, server.address));
    }
  }
  // Sends on both pods, one at a time each, to a user on the other pod.
  const [a0, , , b0] = t.context.users as TestUser[];
  t.context.loops.push(
    new SendLoop("a-to-b", (body, id) => (a0 as TestUser).api.send({ username: (b0 as TestUser).username }, body, id)),
    new SendLoop("b-to-a", (body, id) => (b0 as TestUser).api.send({ username: (a0 as TestUser).username }, body, id)),
  );

  const expected = (s: Shown) =>
    s.online === String(ON_A + ON_B) &&
    s.pods.find((p) => p.name === "ops-a")?.streams === ON_A &&
    s.pods.find((p) => p.name === "ops-b")?.streams === ON_B &&
    s.pods.every((p) => p.messagesPerSecond > 0) &&
    Number(s.messagesPerSecond) > 0 &&
    /^p99 [\d.]+ ms$/.test(s.latency);
  const seen = await pageUntil(page, expected);
  t.deepEqual(
    seen.pods.map((p) => [p.name, p.status, p.postgres, p.redis]),
    [
      ["ops-a", "healthy", "up", "up"],
      ["ops-b", "healthy", "up", "up"],
    ],
  );
  t.is(seen.replicas, "2 / 2", "two chat pods; ceil(5 users / 3) = 2 desired");

  // The same figures as each pod's /metrics: streams per pod, and the cluster's online users (from presence).
  const [metricsA, metricsB] = await Promise.all([scrape(a), scrape(b)]);
  t.is(metricsA.get("parley_streams_open"), ON_A);
  t.is(metricsB.get("parley_streams_open"), ON_B);
  t.is(metricsA.get("parley_online_users"), ON_A + ON_B);
  const now = await shown(page);
  t.is(Number(now.online), metricsA.get("parley_online_users") ?? -1);
  t.is(now.pods.find((p) => p.name === "ops-a")?.streams, metricsA.get("parley_streams_open"));
  t.is(now.pods.find((p) => p.name === "ops-b")?.streams, metricsB.get("parley_streams_open"));

  // The sparklines have drawn something by now.
  t.true((await page.getByRole("img", { name: "Messages per second, last 2 minutes" }).locator("polyline").count()) > 0);
  await keepScreenshot(page, "ops-dashboard-traffic");
});

test.serial("the controller's decision shows in the list with its reason; browsers cannot record one", async (t) => {
  const { a, page } = t.context;
  const api = await LocalScaleApiServer.start({ namespace: NAMESPACE, name: DEPLOYMENT, replicas: 1, dir: scratchDir("kube") });
  t.teardown(() => api.stop());
  const controller = startController(api, { SCALER_ADDRESS: a.address });
  t.teardown(() => controller.stop());
  await controller.idle(); // its first tick: 5 users / 3 per replica → 2, up from 1
  t.is(api.replicas, 2);
  const seen = await pageUntil(page, (s) => s.decisions.length > 0);
  t.regex(seen.decisions[0] as string, /up\s*1 → 2\s*5 users \/ 3 per replica → 2/);
  t.regex((await page.getByRole("region", { name: "Replicas" }).textContent()) ?? "", /controller: 1 → 2/);
  // The README's picture: traffic, both pods, and the decision, with 20 s of history drawn.
  await waitForText(page.getByRole("region", { name: "Messages per second" }).locator(".axis"), /last ([2-9]\d|\d{3}) s|2 min/, 30_000);
  const artifact = await keepScreenshot(page, "ops-dashboard");
  // A test run leaves the tracked picture alone; UPDATE_DOCS_SCREENSHOTS=1 refreshes it on purpose.
  if (process.env.UPDATE_DOCS_SCREENSHOTS === "1") {
    mkdirSync("docs", { recursive: true });
    copyFileSync(artifact, "docs/ops-dashboard.png");
  }

  // The web port routes GetClusterStatus only: RecordScalingDecision is answered as Envoy answers an unrouted path.
  const res = await rawRequest(a.webUrl as string, "/parley.ops.v1.OpsService/RecordScalingDecision", {
    headers: grpcWebHeaders(),
    body: [messageFrame(RecordScalingDecisionRequestSchema, { decision: { fromReplicas: 1, toReplicas: 9, action: 1, reason: "forged" } })],
  }).done;
  t.is(res.headers["grpc-status"], "12"); // UNIMPLEMENTED
  await page.waitForTimeout(1500);
  t.false((await shown(page)).decisions.some((d) => d.includes("forged")));
});

test.serial("a draining pod shows as draining while it drains, then leaves the table", async (t) => {
  const { b, page } = t.context;
  // A health Watch (what a load balancer keeps open) is a call the drain waits for: it holds the drain in
  // "finish in-flight calls" until the test cancels it. Its first answer (SERVING) shows the call is in.
  const session = http2Connect(`http://${b.address}`);
  t.teardown(() => session.close());
  const watch = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Watch", "content-type": "application/grpc", te: "trailers" });
  watch.on("error", () => undefined);
  watch.end(Buffer.alloc(5)); // one empty HealthCheckRequest: the whole server
  await new Promise<void>((resolve) => watch.once("data", () => resolve()));
  const stopped = b.shutdown();

  const draining = await pageUntil(page, (s) => s.pods.find((p) => p.name === "ops-b")?.status === "draining");
  t.is(draining.pods.find((p) => p.name === "ops-a")?.status, "healthy");
  await pageUntil(page, (s) => s.replicas.startsWith("1 /"), 5_000); // a draining pod is no longer a current replica
  await keepScreenshot(page, "ops-dashboard-draining");

  watch.close();
  await stopped;
  const after = await pageUntil(page, (s) => !s.pods.some((p) => p.name === "ops-b"), 5_000);
  t.deepEqual(
    after.pods.map((p) => p.name),
    ["ops-a"],
  );

  // The page links to the chat, and back.
  await page.getByRole("link", { name: "Chat" }).click();
  await page.getByRole("button", { name: "Log in" }).waitFor();
  await page.goBack();
  await pageUntil(page, (s) => s.pods.length === 1);
});

test.serial("when the pod that serves the page goes away, the page says it is not updating and keeps the last figures", async (t) => {
  const { a, page } = t.context;
  await Promise.all(t.context.loops.splice(0).map((loop) => loop.stop()));
  await a.shutdown();
  await waitForText(page.getByRole("status", { name: "Updated" }), /^Not updating since \d\d:\d\d:\d\d: /);
  const last = await shown(page);
  t.deepEqual(
    last.pods.map((p) => p.name),
    ["ops-a"],
  );
  await keepScreenshot(page, "ops-dashboard-away");
});
