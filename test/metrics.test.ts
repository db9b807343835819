// The servers' /metrics as Prometheus sees it: real servers with METRICS_PORT
// on a free port, scraped over HTTP, each metric checked to move when its
// event happens (issue 12: a send raises sent and delivered, a drain sets
// draining, a revoked stream counts as ended).
import { credentials, loadPackageDefinition, type ServiceClientConstructor, type ServiceError, status } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import anyTest, { type TestFn } from "ava";
import { protoPath as healthProtoPath } from "grpc-health-check";
import pg from "pg";
import { freePort, startPostgres } from "../scripts/local-services.js";
import { bearer, ParleyApi } from "../services/client/api.js";
import { connect, newUser } from "./helpers/clients.js";
import { freshDatabase, freshRedis, scratchDir } from "./helpers/infra.js";
import { scrape, scrapeUntil, type Scrape } from "./helpers/metrics.js";
import { RawStream } from "./helpers/raw-stream.js";
import { NO_RATE_LIMIT, startServer, type Env, type InProcessServer } from "./helpers/servers.js";

const test = anyTest as TestFn<{ cleanups: (() => unknown)[] }>;

test.before((t) => {
  t.context.cleanups = [];
});
test.after.always(async (t) => {
  for (const cleanup of t.context.cleanups.reverse()) await cleanup();
});

interface MeteredServer extends InProcessServer {
  metricsUrl: string;
}

/** A server in this process with its metrics on a free port, shut down after the file. */
async function meteredServer(t: { context: { cleanups: (() => unknown)[] } }, env: Env): Promise<MeteredServer> {
  const server = await startServer({ ...env, METRICS_PORT: String(await freePort()), PRESENCE_GRACE_SECONDS: "1" });
  t.context.cleanups.push(() => server.shutdown());
  return { ...server, metricsUrl: `http://127.0.0.1:${server.metricsPort}/metrics` };
}

/** A fresh cluster-mode deployment: its own database and Redis. */
async function clusterEnv(t: { context: { cleanups: (() => unknown)[] } }): Promise<Env> {
  const [databaseUrl, redis] = await Promise.all([freshDatabase(), freshRedis()]);
  t.context.cleanups.push(() => redis.stop());
  return { DATABASE_URL: databaseUrl, REDIS_URL: redis.url };
}

/** grpc.health.v1.Health/Check, unauthenticated, as a load balancer asks it. */
async function healthCheck(address: string): Promise<string> {
  const definition = loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
  const grpc = loadPackageDefinition(definition) as unknown as { grpc: { health: { v1: { Health: ServiceClientConstructor } } } };
  const client = new grpc.grpc.health.v1.Health(address, credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) =>
      client.check({ service: "" }, (err: ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))),
    );
  } finally {
    client.close();
  }
}

const send = (method: string) => ({ grpc_service: "parley.chat.v1.ChatService", grpc_method: method });
const codeOf = (err: unknown) => (err as ServiceError).code;

test.serial("a send raises sent, delivered and the latency histograms once; a retry does not; a Connect is open until it ends", async (t) => {
  const server = await meteredServer(t, { ...(await clusterEnv(t)), ...NO_RATE_LIMIT });
  const [alice, bob] = await Promise.all([newUser(server.address, "alice"), newUser(server.address, "bob")]);
  const before = await scrape(server.metricsUrl);
  t.is(before.contentType, "text/plain; version=0.0.4; charset=utf-8");
  t.is(before.value("parley_streams_open", { rpc: "connect" }), 0);
  t.is(before.value("parley_draining"), 0);

  const inbox = await connect(alice, server.address);
  t.context.cleanups.push(() => inbox.client.close());
  await scrapeUntil(server.metricsUrl, (s) => s.value("parley_streams_open", { rpc: "connect" }) === 1, "one open Connect");

  const message = await bob.api.send({ username: alice.username }, "hello", "m-1");
  await inbox.until(() => inbox.messages.some((m) => m.id === message.id), "alice got the message");
  const after = await scrapeUntil(server.metricsUrl, (s) => s.count("parley_messages_delivered_total") === 1, "one delivery");
  const moved = (name: string, labels: Record<string, string> = {}) => after.count(name, labels) - before.count(name, labels);
  t.is(moved("parley_messages_sent_total", { kind: "direct" }), 1);
  t.is(moved("parley_messages_sent_total"), 1);
  t.is(moved("parley_messages_delivered_total", { kind: "direct" }), 1, "alice's one stream; bob has none");
  t.is(moved("parley_send_commit_seconds_count"), 1);
  t.is(moved("parley_send_first_delivery_seconds_count"), 1);
  t.is(moved("parley_fanout_lag_seconds_count"), 1);
  t.is(moved("parley_group_commit_batch_size_count"), 1);
  t.is(moved("parley_group_commit_batch_size_sum"), 1);
  t.is(after.value("parley_dependency_errors_total", { dependency: "postgres" }), 0, "healthy traffic fails nothing");
  t.is(after.value("parley_dependency_errors_total", { dependency: "redis" }), 0, "healthy traffic fails nothing");
  t.true(after.count("parley_send_commit_seconds_sum") < 5, "the commit took seconds, not milliseconds mistaken for seconds");
  t.is(moved("grpc_server_started_total", { ...send("Send"), grpc_type: "unary" }), 1);
  t.is(moved("grpc_server_handled_total", { ...send("Send"), grpc_type: "unary", grpc_code: "OK" }), 1);
  t.is(moved("grpc_server_handling_seconds_count", send("Send")), 1);
  t.is(moved("grpc_server_msg_received_total", send("Send")), 1);
  t.is(moved("grpc_server_msg_sent_total", send("Send")), 1);
  t.is(after.count("grpc_server_started_total", { ...send("Connect"), grpc_type: "bidi_stream" }), 1);
  t.true(after.count("grpc_server_msg_sent_total", send("Connect")) >= 2, "ready and the message, at least");

  // A DM between two connected users reaches this pod on two channels: two writes, one first delivery.
  const bobInbox = await connect(bob, server.address);
  t.context.cleanups.push(() => bobInbox.client.close());
  const reply = await alice.api.send({ username: bob.username }, "hi bob", "m-3");
  await bobInbox.until(() => bobInbox.messages.some((m) => m.id === reply.id), "bob got the reply");
  await inbox.until(() => inbox.messages.some((m) => m.id === reply.id), "alice's own stream got her reply");
  const both = await scrapeUntil(server.metricsUrl, (s) => s.count("parley_messages_delivered_total") === 3, "three deliveries");
  t.is(both.count("parley_messages_sent_total"), 2);
  t.is(both.count("parley_fanout_lag_seconds_count"), 3, "every write");
  t.is(both.count("parley_send_first_delivery_seconds_count"), 2, "once per message");
  bobInbox.client.close();
  await scrapeUntil(server.metricsUrl, (s) => s.value("parley_streams_open", { rpc: "connect" }) === 1, "bob's Connect closed");

  // A retry of the same client_msg_id answers with the original: nothing new was committed.
  t.is((await bob.api.send({ username: alice.username }, "hello again", "m-1")).id, message.id);
  const retried = await scrape(server.metricsUrl);
  t.is(retried.count("parley_messages_sent_total"), 2);
  t.is(retried.count("parley_send_commit_seconds_count"), 2);
  t.is(retried.count("grpc_server_handled_total", { ...send("Send"), grpc_code: "OK" }), 3);

  // A call without a token, and a health check: counted with their codes, by service.
  const anonymous = new ParleyApi(server.address);
  t.is(codeOf(await t.throwsAsync(anonymous.send({ username: alice.username }, "who am I", "m-2"))), status.UNAUTHENTICATED);
  t.is(await healthCheck(server.address), "SERVING");
  const refused = await scrape(server.metricsUrl);
  t.is(refused.count("grpc_server_handled_total", { ...send("Send"), grpc_code: "Unauthenticated" }), 1);
  t.is(refused.count("grpc_server_handled_total", { grpc_service: "grpc.health.v1.Health", grpc_method: "Check", grpc_code: "OK" }), 1);

  inbox.client.close();
  const closed = await scrapeUntil(server.metricsUrl, (s) => s.value("parley_streams_open", { rpc: "connect" }) === 0, "the Connect closed");
  t.is(closed.count("parley_streams_ended_total", { reason: "client" }), 2);
  t.is(closed.count("grpc_server_handled_total", { ...send("Connect"), grpc_code: "OK" }), 2, "the clients half-closed, the server ended OK");

  // A client that cancels instead. (The server may take the reset for a half-close and end OK first, so either code counts.)
  const raw = RawStream.connect(server.address, alice.token).hello();
  await raw.until(() => raw.caughtUp, "alice caught up again");
  t.context.cleanups.push(() => raw.call.cancel());
  raw.call.cancel();
  const cancelled = await scrapeUntil(
    server.metricsUrl,
    (s) => s.count("grpc_server_handled_total", send("Connect")) === 3,
    "the cancelled Connect handled",
  );
  t.is(cancelled.count("parley_streams_ended_total", { reason: "client" }), 3);
  t.is(cancelled.value("parley_streams_open", { rpc: "connect" }), 0);

  // A Subscribe counts apart, by its rpc, and as a server_stream.
  const subscribed = new RawStream(alice.api.chat.subscribe({ cursors: [], acceptBatch: false }, bearer(alice.token)));
  t.context.cleanups.push(() => subscribed.call.cancel());
  await subscribed.until(() => subscribed.caughtUp, "alice subscribed");
  const subscribing = await scrape(server.metricsUrl);
  t.is(subscribing.value("parley_streams_open", { rpc: "subscribe" }), 1);
  t.is(subscribing.value("parley_streams_open", { rpc: "connect" }), 0);
  t.is(subscribing.count("grpc_server_started_total", { ...send("Subscribe"), grpc_type: "server_stream" }), 1);
  subscribed.call.cancel();
  await scrapeUntil(server.metricsUrl, (s) => s.value("parley_streams_open", { rpc: "subscribe" }) === 0, "the Subscribe closed");

  // No label names a user or a conversation (design.md: labels come from small fixed sets).
  const private_ = [alice.username, bob.username, message.conversationId];
  const leaked = cancelled.labelValues().filter((value) => private_.some((p) => value.includes(p)));
  t.deepEqual(leaked, []);
  anonymous.close();
});

test.serial("a revoked session's stream counts as ended for revocation, and no longer open", async (t) => {
  const server = await meteredServer(t, await clusterEnv(t));
  const carol = await newUser(server.address, "carol");
  const stream = RawStream.connect(server.address, carol.token).hello();
  t.context.cleanups.push(() => stream.call.cancel());
  await stream.until(() => stream.caughtUp, "carol caught up");
  t.is((await scrape(server.metricsUrl)).value("parley_streams_open", { rpc: "connect" }), 1);

  await carol.api.logOut();
  t.is((await stream.done).code, status.UNAUTHENTICATED);
  const after = await scrapeUntil(server.metricsUrl, (s) => s.count("parley_streams_ended_total", { reason: "revoked" }) === 1, "a revoked end");
  t.is(after.value("parley_streams_open", { rpc: "connect" }), 0);
  t.is(after.count("parley_streams_ended_total") - after.count("parley_streams_ended_total", { reason: "revoked" }), 0, "no other end");
  t.is(after.count("grpc_server_handled_total", { ...send("Connect"), grpc_code: "Unauthenticated" }), 1);
});

test.serial("a stream on a recycled connection counts as ended for recycling", async (t) => {
  const server = await meteredServer(t, { ...(await clusterEnv(t)), GRPC_MAX_CONNECTION_AGE_SECONDS: "1" });
  const mona = await newUser(server.address, "mona");
  const stream = RawStream.connect(server.address, mona.token).hello();
  t.context.cleanups.push(() => stream.call.cancel());
  t.is((await stream.done).code, status.UNAVAILABLE);
  const after = await scrapeUntil(server.metricsUrl, (s) => s.count("parley_streams_ended_total", { reason: "recycle" }) === 1, "a recycled end");
  t.is(after.count("parley_streams_ended_total", { reason: "error" }), 0);
});

test.serial("a consumer that stops reading counts as ended for being slow", async (t) => {
  const server = await meteredServer(t, { ...(await clusterEnv(t)), ...NO_RATE_LIMIT, STREAM_QUEUE_LIMIT: "10" });
  const [nina, otto] = await Promise.all([newUser(server.address, "nina"), newUser(server.address, "otto")]);
  const stream = RawStream.connect(server.address, nina.token).hello();
  t.context.cleanups.push(() => stream.call.cancel());
  await stream.until(() => stream.caughtUp, "nina caught up");
  stream.call.pause();
  const body = "x".repeat(4000);
  let sent = 0;
  // Until the transport's buffers are full and ten more frames wait: a few hundred KiB on a local connection.
  while ((await scrape(server.metricsUrl)).count("parley_streams_ended_total", { reason: "slow_consumer" }) === 0) {
    if (sent >= 3000) throw new Error(`still not ended after ${sent} messages`);
    await Promise.all(Array.from({ length: 50 }, (_, i) => otto.api.send({ username: nina.username }, body, `s-${sent + i}`)));
    sent += 50;
  }
  t.log(`ended as slow after ${sent} messages of 4 kB`);
  const after = await scrape(server.metricsUrl);
  t.is(after.value("parley_streams_open", { rpc: "connect" }), 0);
  t.is(after.count("parley_streams_ended_total"), 1);
  stream.call.resume();
  t.is((await stream.done).code, status.RESOURCE_EXHAUSTED);
});

test.serial("a send refused by the rate limiter counts as rate limited, with RESOURCE_EXHAUSTED", async (t) => {
  const server = await meteredServer(t, { ...(await clusterEnv(t)), RATE_LIMIT_BURST: "1", RATE_LIMIT_PER_SECOND: "1" });
  const [dave, erin] = await Promise.all([newUser(server.address, "dave"), newUser(server.address, "erin")]);
  t.is((await scrape(server.metricsUrl)).value("parley_rate_limited_total", { action: "send" }), 0);
  await dave.api.send({ username: erin.username }, "one", "r-1");
  t.is(codeOf(await t.throwsAsync(dave.api.send({ username: erin.username }, "two", "r-2"))), status.RESOURCE_EXHAUSTED);
  const after = await scrape(server.metricsUrl);
  t.is(after.value("parley_rate_limited_total", { action: "send" }), 1);
  t.is(after.count("parley_messages_sent_total"), 1);
  t.is(after.count("grpc_server_handled_total", { ...send("Send"), grpc_code: "ResourceExhausted" }), 1);
});

test.serial("a drain sets draining and counts a drain; its streams end as drained; /metrics answers until the very end", async (t) => {
  const env = { ...(await clusterEnv(t)), ...NO_RATE_LIMIT };
  const server = await meteredServer(t, env);
  const [frank, gina] = await Promise.all([newUser(server.address, "frank"), newUser(server.address, "gina")]);
  const first = await gina.api.send({ username: frank.username }, "first", "d-1");
  const stream = RawStream.connect(server.address, frank.token).hello();
  t.context.cleanups.push(() => stream.call.cancel());
  await stream.until(() => stream.caughtUp, "frank caught up");

  // A send held behind a row lock keeps the drain in its "finish in-flight calls" step while the test scrapes.
  const locker = new pg.Client({ connectionString: env.DATABASE_URL });
  await locker.connect();
  t.context.cleanups.push(() => locker.end());
  await locker.query("BEGIN");
  await locker.query("SELECT id FROM conversations WHERE id = $1 FOR UPDATE", [first.conversationId]);
  const held = gina.api.send({ username: frank.username }, "held", "d-2").then(
    () => status.OK,
    (err: unknown) => codeOf(err),
  );
  await scrapeUntil(server.metricsUrl, (s) => s.count("grpc_server_started_total", send("Send")) === 2, "the held send started");

  const shutdown = server.shutdown();
  let during: Scrape;
  try {
    during = await scrapeUntil(server.metricsUrl, (s) => s.value("parley_draining") === 1, "draining");
  } finally {
    await locker.query("COMMIT");
  }
  t.is(during.value("parley_drains_total"), 1);
  t.is((await stream.done).code, status.UNAVAILABLE);
  t.is(during.count("parley_streams_ended_total", { reason: "drain" }), 1);
  t.is(during.value("parley_streams_open", { rpc: "connect" }), 0);
  t.is(await held, status.OK, "the held send finished in the drain");
  await shutdown;
  await t.throwsAsync(scrape(server.metricsUrl), undefined, "the metrics server closed with the process's last step");
});

test.serial("two pods on one Redis report the same parley_online_users, from presence", async (t) => {
  const env = await clusterEnv(t);
  const [one, two] = [await meteredServer(t, { ...env, POD_NAME: "pod-one" }), await meteredServer(t, { ...env, POD_NAME: "pod-two" })];
  const [hana, ivan] = await Promise.all([newUser(one.address, "hana"), newUser(two.address, "ivan")]);
  const both = (n: number) =>
    Promise.all([one, two].map((pod) => scrapeUntil(pod.metricsUrl, (s) => s.value("parley_online_users") === n, `${n} online`)));
  await both(0);
  const onOne = await connect(hana, one.address);
  const onTwo = await connect(ivan, two.address);
  t.context.cleanups.push(
    () => onOne.client.close(),
    () => onTwo.client.close(),
  );
  await both(2);
  onOne.client.close();
  await both(1);
  onTwo.client.close();
  await both(0);
  t.pass();
});

test.serial("a Postgres outage raises parley_dependency_errors_total and drops parley_dependency_up until it is back", async (t) => {
  const postgres = await startPostgres(scratchDir("pg-metrics"));
  t.context.cleanups.push(() => postgres.stop());
  const server = await meteredServer(t, { DATABASE_URL: postgres.url, REDIS_URL: undefined });
  const [jack, kate] = await Promise.all([newUser(server.address, "jack"), newUser(server.address, "kate")]);
  const up = await scrapeUntil(server.metricsUrl, (s) => s.value("parley_dependency_up", { dependency: "postgres" }) === 1, "Postgres up");
  t.is(up.value("parley_dependency_errors_total", { dependency: "postgres" }), 0);
  t.is(up.value("parley_dependency_up", { dependency: "redis" }), undefined, "no Redis, no Redis series");
  t.is(up.value("parley_dependency_errors_total", { dependency: "redis" }), undefined);

  await postgres.stop();
  t.is(codeOf(await t.throwsAsync(jack.api.send({ username: kate.username }, "into the void", "p-1"))), status.UNAVAILABLE);
  const down = await scrapeUntil(
    server.metricsUrl,
    (s) => s.value("parley_dependency_up", { dependency: "postgres" }) === 0,
    "Postgres down",
    15_000,
  );
  t.true((down.value("parley_dependency_errors_total", { dependency: "postgres" }) ?? 0) >= 1);

  await postgres.start();
  await scrapeUntil(server.metricsUrl, (s) => s.value("parley_dependency_up", { dependency: "postgres" }) === 1, "Postgres back", 15_000);
  await jack.api.send({ username: kate.username }, "back", "p-2");
});

test.serial("embedded (PGlite, no Redis): Postgres' series stand for PGlite, and there is no Redis series", async (t) => {
  const server = await meteredServer(t, { DATABASE_URL: undefined, REDIS_URL: undefined, PARLEY_DATA_DIR: scratchDir("metrics-embedded") });
  const s = await scrapeUntil(server.metricsUrl, (x) => x.value("parley_dependency_up", { dependency: "postgres" }) === 1, "PGlite up", 30_000);
  t.is(s.value("parley_dependency_up", { dependency: "redis" }), undefined);
  t.is(s.value("parley_dependency_errors_total", { dependency: "redis" }), undefined);
  t.is(s.value("parley_online_users"), 0);
  t.is(s.value("parley_bus_gaps_total"), 0);
});

test.serial("a Redis outage: the bus gap ends the streams as bus_gap, Redis errors count, parley_dependency_up drops until it is back", async (t) => {
  let redis = await freshRedis();
  const port = redis.port;
  t.context.cleanups.push(() => redis.stop());
  const server = await meteredServer(t, { DATABASE_URL: await freshDatabase(), REDIS_URL: redis.url });
  const lena = await newUser(server.address, "lena");
  const stream = RawStream.connect(server.address, lena.token).hello();
  t.context.cleanups.push(() => stream.call.cancel());
  await stream.until(() => stream.caughtUp, "lena caught up");
  const up = await scrapeUntil(server.metricsUrl, (s) => s.value("parley_dependency_up", { dependency: "redis" }) === 1, "Redis up");
  t.is(up.value("parley_bus_gaps_total"), 0);
  t.is(up.value("parley_dependency_errors_total", { dependency: "redis" }), 0);

  await redis.stop();
  t.is((await stream.done).code, status.UNAVAILABLE);
  const down = await scrapeUntil(server.metricsUrl, (s) => s.value("parley_dependency_up", { dependency: "redis" }) === 0, "Redis down", 15_000);
  t.is(down.value("parley_bus_gaps_total"), 1);
  t.is(down.value("parley_streams_ended_total", { reason: "bus_gap" }), 1);
  t.true((down.value("parley_dependency_errors_total", { dependency: "redis" }) ?? 0) >= 1, "the failed probe and heartbeats count");
  t.is(down.value("parley_dependency_up", { dependency: "postgres" }), 1);

  redis = await freshRedis(port);
  await scrapeUntil(server.metricsUrl, (s) => s.value("parley_dependency_up", { dependency: "redis" }) === 1, "Redis back", 15_000);
});

test.serial(
  "/metrics answers 404 elsewhere and 405 to other methods; an auth pod reports no online users; METRICS_PORT 0 serves nothing",
  async (t) => {
    const server = await meteredServer(t, { DATABASE_URL: await freshDatabase(), REDIS_URL: undefined, SERVICES: "auth" });
    const auth = await scrape(server.metricsUrl);
    t.is(auth.value("parley_online_users"), undefined, "it reads no presence, so it adds nothing to the cluster's sum");
    t.is(auth.value("parley_draining"), 0);
    const base = server.metricsUrl.replace("/metrics", "");
    t.is((await fetch(`${base}/`)).status, 404);
    t.is((await fetch(`${base}/metrics/x`)).status, 404);
    const post = await fetch(server.metricsUrl, { method: "POST" });
    t.is(post.status, 405);
    t.is(post.headers.get("allow"), "GET, HEAD");
    const off = await startServer({ DATABASE_URL: await freshDatabase(), REDIS_URL: undefined, METRICS_PORT: "0" });
    t.context.cleanups.push(() => off.shutdown());
    t.is(off.metricsPort, undefined);
  },
);
