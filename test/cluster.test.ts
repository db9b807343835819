// Several pods as one cluster (design.md, "Runtime modes": cluster; guarantees 4
// and 5): two server processes share one Postgres database and one Redis, and
// users connected to different pods talk, see each other online, and lose a
// revoked session everywhere at once. Faults (SIGTERM, SIGKILL, Redis restart)
// are in cluster-faults.test.ts.
import { status, type ServiceError } from "@grpc/grpc-js";
import anyTest, { type TestFn } from "ava";
import type { Message } from "../gen/parley/chat/v1/chat.js";
import { ParleyApi } from "../services/client/api.js";
import { ReconnectingClient } from "../services/client/reconnecting-client.js";
import { connect, eventually, newUser, PASSWORD, uniqueName, type Inbox, type TestUser } from "./helpers/clients.js";
import { range } from "./helpers/history.js";
import { freshDatabase, freshRedis } from "./helpers/infra.js";
import { RawStream } from "./helpers/raw-stream.js";
import { NO_RATE_LIMIT, spawnServer, startedTogether, stopPod, type ChildServer } from "./helpers/servers.js";

interface Context {
  a: ChildServer;
  b: ChildServer;
}

const test = anyTest as TestFn<Context>;
const cleanups: (() => unknown)[] = [];
const WAIT_MS = 30_000;

/** Closed after the file, clients before servers. */
function track<T extends { close(): void }>(closeable: T): T {
  cleanups.push(() => closeable.close());
  return closeable;
}

test.before(async (t) => {
  const redis = await freshRedis();
  cleanups.push(() => whileAlive(redis.stop()));
  const env = {
    DATABASE_URL: await freshDatabase(),
    REDIS_URL: redis.url,
    PRESENCE_TTL_SECONDS: "6",
    ...NO_RATE_LIMIT,
  };
  // Started together: migrations run under an advisory lock, so this is safe.
  const [a, b] = await startedTogether(
    ["pod-a", "pod-b"].map((POD_NAME) => spawnServer({ ...env, POD_NAME })),
    (pod) => stopPod(pod),
  );
  for (const pod of [a, b]) cleanups.push(() => stopPod(pod));
  t.context.a = a;
  t.context.b = b;
});
test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

// ---------------------------------------------------------------------------
// Helpers of this file

/**
 * Waits for `promise` with the event loop held open: LocalRedis.stop() waits for
 * the exit of an unref'd child, which never comes once nothing else is pending.
 */
async function whileAlive<T>(promise: Promise<T>): Promise<T> {
  const timer = setInterval(() => undefined, 1000);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

/** A tracked raw Connect stream, once caught up. */
async function rawStream(address: string, token: string): Promise<RawStream> {
  const stream = track(RawStream.connect(address, token).hello());
  await stream.until(() => stream.caughtUp, "caught up");
  return stream;
}

/** A reconnecting client whose inbox is tracked, and which records every disconnection. */
async function inboxOn(user: TestUser, address: string): Promise<Inbox & { disconnects: number[] }> {
  const inbox = await connect(user, address);
  track(inbox.client);
  const disconnects: number[] = [];
  inbox.client.on("disconnected", ({ code }) => disconnects.push(code));
  return Object.assign(inbox, { disconnects });
}

/** The same user's unary calls through another pod. */
const apiOn = (pod: ChildServer, user: TestUser) => track(new ParleyApi(pod.address, user.token));

const brief = (m: Message) => ({ id: m.id, seq: m.seq, sender: m.sender, body: m.body });
const bySeq = (messages: Message[]) => [...messages].sort((x, y) => x.seq - y.seq);
const code = (err: unknown) => (err as ServiceError).code;

/** `promise`, or a failure naming `what` after WAIT_MS. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** `count` sends in a row, each after the previous one is acknowledged. */
async function sendInOrder(count: number, send: (i: number) => Promise<Message>): Promise<Message[]> {
  const acks: Message[] = [];
  for (let i = 0; i < count; i++) acks.push(await send(i));
  return acks;
}

// ---------------------------------------------------------------------------
// 1. Messages across pods

test("DMs, groups and broadcast reach users on the other pod live, exactly once, in order", async (t) => {
  const { a, b } = t.context;
  const [alice, bob, carol, dave] = await Promise.all([
    newUser(a.address, "al"),
    newUser(b.address, "bo"),
    newUser(b.address, "ca"),
    newUser(a.address, "da"),
  ]);
  for (const user of [alice, bob, carol, dave]) track(user.api);
  const group = await alice.api.createGroup(uniqueName("xpod"));
  await Promise.all([bob, carol].map((u) => u.api.joinGroup(group.name)));

  // Each user has a reconnecting client on one pod and a raw stream on the other.
  const aliceIn = await inboxOn(alice, a.address);
  const bobIn = await inboxOn(bob, b.address);
  const carolIn = await inboxOn(carol, b.address);
  const daveIn = await inboxOn(dave, a.address);
  const aliceRaw = await rawStream(b.address, alice.token);
  const bobRaw = await rawStream(a.address, bob.token);
  const carolRaw = await rawStream(a.address, carol.token);
  const daveRaw = await rawStream(b.address, dave.token);
  t.is(aliceRaw.pod, b.pod);
  t.is(bobRaw.pod, a.pod);
  const bobOnA = apiOn(a, bob);

  // Concurrent senders on both pods, over streams and unary Send.
  const N = 12;
  const [dm, groupAcks, broadcast] = await Promise.all([
    Promise.all([
      sendInOrder(N, (i) => aliceIn.client.send({ username: bob.username }, `alice→bob ${i}`)),
      sendInOrder(N, (i) => bob.api.send({ username: alice.username }, `bob→alice ${i}`, `dm-${i}`)),
    ]),
    Promise.all([
      sendInOrder(N, (i) => aliceIn.client.send({ group: group.name }, `alice in group ${i}`)),
      sendInOrder(N, (i) => bobIn.client.send({ group: group.name }, `bob in group ${i}`)),
      sendInOrder(N, (i) => carol.api.send({ group: group.name }, `carol in group ${i}`, `g-${i}`)),
    ]),
    Promise.all([
      sendInOrder(N, (i) => bobOnA.send({ broadcast: true }, `bob to all ${i}`, `b-${i}`)),
      sendInOrder(N, (i) => daveIn.client.send({ broadcast: true }, `dave to all ${i}`)),
    ]),
  ]);

  const expectations: [string, Message[], (Inbox | RawStream)[]][] = [
    ["DM", bySeq(dm.flat()), [aliceIn, bobIn, aliceRaw, bobRaw]],
    ["group", bySeq(groupAcks.flat()), [aliceIn, bobIn, carolIn, aliceRaw, bobRaw, carolRaw]],
    ["broadcast", bySeq(broadcast.flat()), [aliceIn, bobIn, carolIn, daveIn, aliceRaw, bobRaw, carolRaw, daveRaw]],
  ];
  for (const [what, expected, receivers] of expectations) {
    const conversationId = expected[0].conversationId;
    const first = expected[0].seq;
    t.deepEqual(
      expected.map((m) => m.seq),
      range(first, first + expected.length - 1),
      `${what}: the acknowledged seqs have no gap`,
    );
    const last = expected[expected.length - 1].seq;
    for (const [i, receiver] of receivers.entries()) {
      const got = () =>
        receiver instanceof RawStream ? receiver.messages(conversationId) : receiver.messages.filter((m) => m.conversationId === conversationId);
      const what2 = `${what}, receiver ${i}`;
      await receiver.until(() => got().some((m) => m.seq === last), what2, WAIT_MS);
      // Everyone joined before the first message, so each receiver has the whole conversation, once each.
      t.deepEqual(got().map(brief), expected.map(brief), what2);
    }
  }
  // All of it arrived live: no stream ended or replayed.
  for (const inbox of [aliceIn, bobIn, carolIn, daveIn]) {
    t.is(inbox.caughtUp, 1);
    t.deepEqual(inbox.disconnects, []);
  }
  for (const raw of [aliceRaw, bobRaw, carolRaw, daveRaw]) {
    t.is(raw.status, undefined);
    t.is(raw.frames.filter((f) => f.caughtUp).length, 1);
  }
});

// ---------------------------------------------------------------------------
// 2. Cluster-wide presence

test("ListOnlineUsers on either pod lists users of both pods, and peers on the other pod get online and offline events", async (t) => {
  const { a, b } = t.context;
  const [alice, bob, carol, loner] = await Promise.all([
    newUser(a.address, "pal"),
    newUser(b.address, "pbo"),
    newUser(a.address, "pca"),
    newUser(b.address, "plo"),
  ]);
  for (const user of [alice, bob, carol, loner]) track(user.api);
  // Alice shares a group with Bob; Carol shares a DM with him.
  const group = await bob.api.createGroup(uniqueName("pres"));
  await alice.api.joinGroup(group.name);
  await carol.api.send({ username: bob.username }, "hi bob", "hi");

  const bobIn = await inboxOn(bob, b.address);
  const aliceIn = await inboxOn(alice, a.address);
  const carolRaw = await rawStream(a.address, carol.token);
  const saw = (username: string, online: boolean) => () => bobIn.presence.some((p) => p.username === username && p.online === online);
  await bobIn.until(saw(alice.username, true), "alice online", WAIT_MS);
  await bobIn.until(saw(carol.username, true), "carol online", WAIT_MS);

  const lists = [apiOn(a, loner), apiOn(b, loner)];
  for (const api of lists) {
    const online = await eventually(
      () => api.listOnlineUsers(),
      (names) => [alice, bob, carol].every((u) => names.includes(u.username)),
      WAIT_MS,
    );
    t.false(online.includes(loner.username), `${api.address}: a user with no stream is not online`);
  }

  // Closing the streams on pod A: Bob, on pod B, hears that both went offline.
  aliceIn.client.close();
  carolRaw.close();
  await bobIn.until(saw(alice.username, false), "alice offline", WAIT_MS);
  await bobIn.until(saw(carol.username, false), "carol offline", WAIT_MS);
  for (const api of lists) {
    const online = await eventually(
      () => api.listOnlineUsers(),
      (names) => !names.includes(alice.username) && !names.includes(carol.username),
      WAIT_MS,
    );
    t.true(online.includes(bob.username), `${api.address}: bob is still online`);
  }
  t.deepEqual(
    bobIn.presence.filter((p) => p.username === alice.username).map((p) => p.online),
    [true, false],
    "one event per change",
  );
});

// ---------------------------------------------------------------------------
// 3. Revocation across pods

test("LogOut through one pod fails the token at once on the other and ends its stream there with UNAUTHENTICATED", async (t) => {
  const { a, b } = t.context;
  const alice = await newUser(a.address, "rev");
  const friend = await newUser(b.address, "frn");
  track(alice.api);
  track(friend.api);
  // A second session of Alice's, on pod B, must survive the logout of the first.
  const otherSession = track(new ParleyApi(b.address));
  await otherSession.logIn(alice.username, PASSWORD);

  const onB = apiOn(b, alice);
  t.is((await onB.whoAmI())?.username, alice.username);
  t.true((await onB.listConversations()).length > 0);
  const raw = await rawStream(b.address, alice.token);
  const client = track(new ReconnectingClient({ address: b.address, token: alice.token, backoff: { initialMs: 50, maxMs: 1000 } }));
  const clientEnded = new Promise<{ code: number; willRetry: boolean }>((resolve) =>
    client.on("disconnected", ({ code, willRetry }) => resolve({ code, willRetry })),
  );
  const clientReady = new Promise<void>((resolve) => client.once("caughtUp", resolve));
  client.start();
  await clientReady;
  const survivor = await rawStream(b.address, otherSession.token as string);

  await alice.api.logOut(); // through pod A

  // At once: no waiting between the logout and these calls.
  t.is(code(await t.throwsAsync(onB.whoAmI())), status.UNAUTHENTICATED);
  t.is(code(await t.throwsAsync(onB.listConversations())), status.UNAUTHENTICATED);
  t.is(code(await t.throwsAsync(onB.send({ username: friend.username }, "still here?", "late"))), status.UNAUTHENTICATED);

  const final = await within(raw.done, "the stream on pod B to end");
  t.is(final.code, status.UNAUTHENTICATED, final.details);
  t.deepEqual(await within(clientEnded, "the reconnecting client's stream to end"), { code: status.UNAUTHENTICATED, willRetry: false });
  t.is(client.state, "closed");

  // The other session still works, stream and all.
  t.is((await otherSession.whoAmI())?.username, alice.username);
  const hello = await friend.api.send({ username: alice.username }, "for the other session", "after");
  await survivor.until(() => survivor.messages(hello.conversationId).some((m) => m.id === hello.id), "the DM on the surviving stream");
  t.is(survivor.status, undefined);
});
