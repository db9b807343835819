// "Live means live" and "Authentication" (design.md): Postgres is the truth
// and Redis only the fast path, so whatever the fast path loses — a publish,
// a membership event, a revocation — every open stream converges on the truth
// within the design's bounds: a committed message within 5 s (or the stream
// ends with UNAVAILABLE), a revoked session within 10 s, including a Connect
// that has not sent hello. Each loss is made for real: Redis connections
// killed, rows written behind the pods' backs as a pod that died between its
// commit and its publish would leave them.
import { status } from "@grpc/grpc-js";
import anyTest, { type TestFn } from "ava";
import pg from "pg";
import type { Message } from "../gen/parley/chat/v1/chat.js";
import { Redis } from "ioredis";
import { ParleyApi, bearer } from "../services/client/api.js";
import { newUser, uniqueName, type TestUser } from "./helpers/clients.js";
import { freshDatabase, freshRedis } from "./helpers/infra.js";
import { RawStream } from "./helpers/raw-stream.js";
import { NO_RATE_LIMIT, spawnServer, startedTogether, startServer, stopPod, type ChildServer } from "./helpers/servers.js";
import type { LocalRedis } from "../scripts/local-services.js";

interface Context {
  pods: ChildServer[];
  redis: LocalRedis;
  db: pg.Client;
}

const test = anyTest as TestFn<Context>;
const LIVE_MS = 5_000;
const REVOKED_MS = 10_000;

test.before(async (t) => {
  const redis = await freshRedis();
  const databaseUrl = await freshDatabase();
  const env = { DATABASE_URL: databaseUrl, REDIS_URL: redis.url, ...NO_RATE_LIMIT };
  const pods = await startedTogether(
    ["live-a", "live-b"].map((POD_NAME) => spawnServer({ ...env, POD_NAME })),
    (pod) => stopPod(pod),
  );
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  t.context = { pods, redis, db };
});

test.after.always(async (t) => {
  await t.context.db?.end();
  await Promise.all((t.context.pods ?? []).map((pod) => stopPod(pod)));
  await t.context.redis?.stop();
});

/** A Connect stream that has said hello and caught up. */
async function live(t: { teardown(fn: () => void): void }, address: string, user: TestUser): Promise<RawStream> {
  const stream = RawStream.connect(address, user.token).hello();
  t.teardown(() => stream.close());
  await stream.until(() => stream.caughtUp, "caught_up");
  return stream;
}

/** A Connect stream that has not said hello; resolves once the server has checked its token (it answers a send before hello). */
async function waitingForHello(t: { teardown(fn: () => void): void }, address: string, user: TestUser): Promise<RawStream> {
  const stream = RawStream.connect(address, user.token);
  t.teardown(() => stream.close());
  stream.send({ username: user.username }, "too early", "early-1");
  await stream.until(() => stream.frames.some((f) => f.sendFailed), "send_failed for the frame before hello");
  return stream;
}

/** Commits a message the way a pod does, but publishes nothing: a pod that died between its commit and its publish. */
async function commitWithoutPublish(db: pg.Client, conversationId: string, sender: TestUser, toName: string, body: string): Promise<number> {
  const { rows } = await db.query<{ seq: string }>(
    `WITH c AS (UPDATE conversations SET last_seq = last_seq + 1, last_message_at = now() WHERE id = $1 RETURNING last_seq)
     INSERT INTO messages (conversation_id, seq, sender_id, sender_name, to_kind, to_name, body, client_msg_id)
     SELECT $1, c.last_seq, $2::bigint, $3, (SELECT kind FROM conversations WHERE id = $1), $4, $5, $6 FROM c
     RETURNING seq`,
    [conversationId, sender.id, sender.username, toName, body, `behind-${body}`],
  );
  return Number(rows[0].seq);
}

test.serial("a message committed but never published reaches open streams within 5 s, once and in order", async (t) => {
  const [a, b] = t.context.pods;
  const ana = await newUser(a.address, "ana");
  const ben = await newUser(b.address, "ben");
  const first = await ana.api.send({ username: ben.username }, "first", "m-1");
  const benStream = await live(t, b.address, ben);
  const anaStream = await live(t, a.address, ana);

  const started = Date.now();
  const seq = await commitWithoutPublish(t.context.db, first.conversationId, ana, ben.username, "lost-publish");
  await benStream.until(() => benStream.messages(first.conversationId).some((m) => m.seq === seq), "the unpublished message", LIVE_MS + 1000);
  const took = Date.now() - started;
  await anaStream.until(() => anaStream.messages(first.conversationId).some((m) => m.seq === seq), "the sender's own stream too", LIVE_MS + 1000);
  t.true(took <= LIVE_MS, `reached the stream after ${took} ms`);

  const next = await ana.api.send({ username: ben.username }, "next", "m-3");
  await benStream.until(() => benStream.messages(first.conversationId).some((m) => m.seq === next.seq), "the next message");
  t.deepEqual(
    benStream
      .messages(first.conversationId)
      .map((m) => m.seq)
      .filter((s) => s > first.seq),
    [seq, next.seq],
    "each message once, in seq order",
  );
  t.is(benStream.status, undefined, "the stream stayed open");
  t.log(`unpublished message reached the open stream after ${took} ms`);
});

test.serial("a send made while Redis drops the command connections reaches the recipient on another pod within 5 s", async (t) => {
  const [a, b] = t.context.pods;
  const ana = await newUser(a.address, "ana");
  const ben = await newUser(b.address, "ben");
  const first = await ana.api.send({ username: ben.username }, "first", "k-1");
  const benStream = await live(t, b.address, ben);
  const admin = new Redis(t.context.redis.url);
  t.teardown(() => admin.disconnect());

  const sent: Message[] = [];
  for (let i = 0; i < 3; i++) {
    await admin.client("KILL", "TYPE", "normal");
    sent.push(await ana.api.send({ username: ben.username }, `during blip ${i}`, `k-blip-${i}`));
  }
  const acked = Date.now();
  await benStream.until(
    () => sent.every((m) => benStream.messages(first.conversationId).some((got) => got.seq === m.seq)),
    "every acknowledged message",
    LIVE_MS + 1000,
  );
  const took = Date.now() - acked;
  t.deepEqual(
    benStream
      .messages(first.conversationId)
      .map((m) => m.seq)
      .filter((s) => s > first.seq),
    sent.map((m) => m.seq),
    "once each, in order",
  );
  t.true(took <= LIVE_MS, `after ${took} ms`);
  t.is(benStream.status, undefined);
  t.log(`3 sends across command-connection kills reached the open stream ${took} ms after the last ack`);
});

test.serial("a join whose membership event was lost is followed within 5 s; a lost leave stops the group's messages", async (t) => {
  const [a, b] = t.context.pods;
  const ana = await newUser(a.address, "ana");
  const ben = await newUser(b.address, "ben");
  const name = uniqueName("g");
  const group = await ben.api.createGroup(name);
  await ben.api.send({ group: name }, "before ana", "g-0");
  const anaStream = await live(t, a.address, ana);

  // The join, as JoinGroup writes it, without the membership event.
  await t.context.db.query(`INSERT INTO group_members (group_id, user_id) SELECT g.id, $1::bigint FROM groups g WHERE g.conversation_id = $2`, [
    ana.id,
    group.conversationId,
  ]);
  await t.context.db.query(
    `INSERT INTO read_cursors (user_id, conversation_id, last_read_seq) SELECT $1::bigint, id, last_seq FROM conversations WHERE id = $2`,
    [ana.id, group.conversationId],
  );
  const joined = Date.now();
  const after = await ben.api.send({ group: name }, "after ana joined", "g-1");
  await anaStream.until(() => anaStream.messages(group.conversationId).some((m) => m.seq === after.seq), "the group message", LIVE_MS + 1000);
  const took = Date.now() - joined;
  t.deepEqual(
    anaStream.messages(group.conversationId).map((m) => m.seq),
    [after.seq],
    "only what came after the join, once",
  );
  t.true(took <= LIVE_MS, `after ${took} ms`);

  // The leave, without the membership event: after a reconcile, ben's messages no longer reach her.
  await t.context.db.query(
    `DELETE FROM group_members gm USING groups g WHERE gm.group_id = g.id AND g.conversation_id = $1 AND gm.user_id = $2::bigint`,
    [group.conversationId, ana.id],
  );
  await new Promise((resolve) => setTimeout(resolve, LIVE_MS));
  const hidden = await ben.api.send({ group: name }, "after ana left", "g-2");
  const probe = await ben.api.send({ username: ana.username }, "probe", "g-probe");
  await anaStream.until(() => anaStream.messages(probe.conversationId).length > 0, "a later DM");
  t.false(
    anaStream.messages(group.conversationId).some((m) => m.seq === hidden.seq),
    "a message sent after the leave did not reach her",
  );
  t.log(`a join without its event was followed after ${took} ms`);
});

test.serial("a revoked token ends a Connect that has not said hello, on its own pod and on another, and unary calls", async (t) => {
  const [a, b] = t.context.pods;
  const ana = await newUser(a.address, "ana");
  const here = await waitingForHello(t, a.address, ana);
  const there = await waitingForHello(t, b.address, ana);
  const subscribed = new RawStream(ana.api.chat.subscribe({ cursors: [], acceptBatch: false }, bearer(ana.token)));
  t.teardown(() => subscribed.close());
  await subscribed.until(() => subscribed.caughtUp, "Subscribe caught up");

  const started = Date.now();
  await ana.api.logOut();
  for (const [name, stream] of [
    ["same pod", here],
    ["other pod", there],
    ["Subscribe", subscribed],
  ] as const) {
    await stream.until(() => stream.status !== undefined, `${name} ended`, REVOKED_MS);
    t.is(stream.status?.code, status.UNAUTHENTICATED, name);
  }
  const took = Date.now() - started;
  t.false(
    here.frames.some((f) => f.ready),
    "no ready frame was ever sent before hello",
  );

  // hello after the revocation is too late: the call is over; a new one is refused.
  const late = RawStream.connect(b.address, ana.token).hello();
  t.teardown(() => late.close());
  t.is((await late.done).code, status.UNAUTHENTICATED);
  t.false(late.frames.some((f) => f.ready || f.caughtUp));
  t.log(`LogOut ended streams waiting for hello on both pods and a Subscribe within ${took} ms`);
});

test.serial("a revocation that Redis never carried holds on every pod within 10 s, streams and unary calls", async (t) => {
  const [a, b] = t.context.pods;
  const ana = await newUser(a.address, "ana");
  const liveStream = await live(t, b.address, ana);
  const early = await waitingForHello(t, a.address, ana);
  // Warm the session caches of both pods.
  const apis = [a, b].map((pod) => new ParleyApi(pod.address, ana.token));
  t.teardown(() => {
    for (const api of apis) api.close();
  });
  for (const api of apis) await api.whoAmI();

  // What LogOut writes to Postgres, with no word to Redis: a lost revocation message and cache update.
  const started = Date.now();
  await t.context.db.query(`UPDATE sessions SET revoked_at = now() WHERE user_id = $1::bigint`, [ana.id]);
  for (const stream of [liveStream, early]) {
    await stream.until(() => stream.status !== undefined, "the stream ended", REVOKED_MS);
    t.is(stream.status?.code, status.UNAUTHENTICATED);
  }
  const streamsEnded = Date.now() - started;
  for (const api of apis) {
    const deadline = started + REVOKED_MS;
    let code: number | undefined;
    while (Date.now() < deadline) {
      code = await api.whoAmI().then(
        () => status.OK,
        (err: { code: number }) => err.code,
      );
      if (code === status.UNAUTHENTICATED) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    t.is(code, status.UNAUTHENTICATED, `WhoAmI on ${api.address}`);
  }
  const unaryRefused = Date.now() - started;
  t.true(unaryRefused <= REVOKED_MS, `${unaryRefused} ms`);
  t.log(`revoked behind Redis's back: streams ended after ${streamsEnded} ms, unary calls refused on both pods after ${unaryRefused} ms`);
});

test.serial("a recycled connection drains its streams before the grace period ends", async (t) => {
  const server = await startServer({
    DATABASE_URL: await freshDatabase(),
    GRPC_MAX_CONNECTION_AGE_SECONDS: "2",
    GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS: "30",
  });
  t.teardown(() => server.shutdown());
  const ana = await newUser(server.address, "ana");
  const stream = RawStream.connect(server.address, ana.token).hello();
  t.teardown(() => stream.close());
  await stream.until(() => stream.caughtUp, "caught_up");
  const started = Date.now();
  const end = await stream.done;
  const took = Date.now() - started;
  t.truthy(stream.frames.at(-1)?.drain, "the last frame is drain");
  t.is(end.code, status.UNAVAILABLE);
  t.true(took < 10_000, `ended after ${took} ms, well before the 30 s grace`);
  t.log(`the recycled connection's stream got drain and UNAVAILABLE ${took} ms after caught_up`);
});

test.serial("a send stuck behind a row lock is refused UNAVAILABLE and rolled back; its retry is stored once and delivered live", async (t) => {
  const databaseUrl = await freshDatabase();
  const server = await startServer({ DATABASE_URL: databaseUrl, DATABASE_STATEMENT_TIMEOUT_SECONDS: "1", ...NO_RATE_LIMIT });
  t.teardown(() => server.shutdown());
  const ana = await newUser(server.address, "ana");
  const ben = await newUser(server.address, "ben");
  const first = await ana.api.send({ username: ben.username }, "first", "lock-1");
  const benStream = await live(t, server.address, ben);

  const locker = new pg.Client({ connectionString: databaseUrl });
  await locker.connect();
  t.teardown(() => locker.end());
  await locker.query("BEGIN");
  await locker.query("SELECT * FROM conversations WHERE id = $1 FOR UPDATE", [first.conversationId]);
  const started = Date.now();
  const refused = await ana.api.send({ username: ben.username }, "behind the lock", "lock-2").then(
    () => undefined,
    (err: { code: number; details: string }) => err,
  );
  const waited = Date.now() - started;
  t.is(refused?.code, status.UNAVAILABLE, "a retryable code, never INTERNAL");
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await locker.query("COMMIT");

  const { rows } = await locker.query("SELECT count(*)::int AS n FROM messages WHERE client_msg_id = 'lock-2'");
  t.is(rows[0].n, 0, "the refused send was rolled back, not committed later");
  const retried = await ana.api.send({ username: ben.username }, "behind the lock", "lock-2");
  const again = await ana.api.send({ username: ben.username }, "behind the lock", "lock-2");
  t.is(again.seq, retried.seq, "a second retry returns the original");
  await benStream.until(() => benStream.messages(first.conversationId).some((m) => m.seq === retried.seq), "the retried message");
  t.deepEqual(
    benStream
      .messages(first.conversationId)
      .map((m) => m.seq)
      .filter((s) => s > first.seq),
    [retried.seq],
  );
  t.log(`refused with UNAVAILABLE after ${waited} ms behind the lock; the retry is seq ${retried.seq}, delivered once`);
});

test.serial("streams cancelled while they open leave nothing behind: the user goes offline once the grace is over", async (t) => {
  const server = await startServer({ DATABASE_URL: await freshDatabase(), PRESENCE_GRACE_SECONDS: "1" });
  t.teardown(() => server.shutdown());
  const ana = await newUser(server.address, "ana");
  const ben = await newUser(server.address, "ben");
  await ana.api.send({ username: ben.username }, "peers", "c-1");
  // Cancelled at every point of the opening: before the token check, during the replay, just after caught_up.
  for (let i = 0; i < 30; i++) {
    const stream = RawStream.connect(server.address, ana.token).hello();
    await new Promise((resolve) => setTimeout(resolve, i % 10));
    stream.close();
  }
  let online: string[] = [];
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    online = await ben.api.listOnlineUsers();
    if (!online.includes(ana.username)) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.false(online.includes(ana.username), "ana is not left online by a stream that never fully opened");
});

test.serial("a hello the server cannot open with ends the call INVALID_ARGUMENT, naming the field", async (t) => {
  const server = await startServer({ DATABASE_URL: await freshDatabase() });
  t.teardown(() => server.shutdown());
  const ana = await newUser(server.address, "ana");
  const stream = RawStream.connect(server.address, ana.token).hello([{ conversationId: "x\u0000y", seq: 1 }]);
  t.teardown(() => stream.close());
  const end = await stream.done;
  t.is(end.code, status.INVALID_ARGUMENT);
  t.regex(end.details, /conversation_id/);
  t.false(
    stream.frames.some((f) => f.ready),
    "no ready for a hello it could not open with",
  );
});
