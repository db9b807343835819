// The delivery guarantees (design.md, "Delivery guarantees" 1–4 and 7) as a
// client sees them, against one real server on a real Postgres. Each test has
// a database of its own: broadcast is shared by every user of a database, so
// tests that count its seqs must not share one.
import { status } from "@grpc/grpc-js";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import type { Cursor, Message, ServerFrame, Target } from "../gen/parley/chat/v1/chat.js";
import { ParleyApi } from "../services/client/api.js";
import { connect, eventually, inboxFor, newUser, uniqueName, type Inbox, type TestUser } from "./helpers/clients.js";
import { fullHistory, range } from "./helpers/history.js";
import { freshDatabase } from "./helpers/infra.js";
import { RawStream } from "./helpers/raw-stream.js";
import { NO_RATE_LIMIT, spawnServer, startServer, type ChildServer, type Env, type InProcessServer } from "./helpers/servers.js";

interface Context {
  /** A server in this process on a database of its own. */
  server(env?: Env): Promise<InProcessServer>;
  /** A server in a child process (for SIGKILL). */
  spawn(env: Env): Promise<ChildServer>;
  /** Closed after the file, whatever happened. */
  track<T extends { close(): void }>(closeable: T): T;
}

const test = anyTest as TestFn<Context>;
const cleanups: (() => unknown)[] = [];

const BROADCAST: Target = { broadcast: true };
const WAIT_MS = 30_000;

test.before((t) => {
  t.context.server = async (env = {}) => {
    const server = await startServer({ DATABASE_URL: await freshDatabase(), REDIS_URL: undefined, ...env });
    cleanups.push(() => server.shutdown());
    return server;
  };
  t.context.spawn = async (env) => {
    const server = await spawnServer(env);
    cleanups.push(async () => {
      server.kill("SIGKILL");
      await server.exited;
    });
    return server;
  };
  t.context.track = (closeable) => {
    cleanups.push(() => closeable.close());
    return closeable;
  };
});
test.after.always(async () => {
  // Clients first, so that servers have no open streams to wait for.
  for (const cleanup of cleanups.reverse()) await cleanup();
});

// ---------------------------------------------------------------------------
// Helpers of this file

const seqs = (messages: Message[]) => messages.map((m) => m.seq);
const of = (messages: Message[], conversationId: string) => messages.filter((m) => m.conversationId === conversationId);

/** Runs `count` tasks, at most `limit` at a time. */
async function pool<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

/** A started reconnecting client whose every message and caught_up is logged in order (`log`), from the first frame. */
function loggedClient(t: ExecutionContext<Context>, user: TestUser, address: string, cursors?: Cursor[]): Inbox {
  const inbox = inboxFor(user, address, { cursors, pingIntervalMs: 0 });
  t.context.track(inbox.client).start();
  return inbox;
}

const sameMessage = (m: Message) => ({ id: m.id, conversationId: m.conversationId, seq: m.seq, body: m.body, sender: m.sender });

// ---------------------------------------------------------------------------
// 1. Durable before acknowledged

test.serial("every acknowledged send survives a SIGKILL of the server right after the ack", async (t) => {
  const env: Env = { DATABASE_URL: await freshDatabase(), REDIS_URL: undefined, ...NO_RATE_LIMIT };
  const first = await t.context.spawn(env);
  const alice = await newUser(first.address, "dur");
  const bob = await newUser(first.address, "dur");

  const stream = t.context.track(RawStream.connect(first.address, alice.token).hello());
  await stream.until(() => stream.caughtUp, "alice caught up");

  // Alice pipelines sends on her stream while Bob sends unary ones; the server dies the moment
  // the 150th stream ack is read, with sends of both kinds still in flight.
  const acked: Message[] = [];
  const KILL_AT = 150;
  let streamAcks = 0;
  stream.call.on("data", (frame: ServerFrame) => {
    if (!frame.sent?.message) return;
    acked.push(frame.sent.message);
    streamAcks += 1;
    if (streamAcks === KILL_AT) first.kill("SIGKILL");
  });
  const unary = pool(200, 8, async (i) => {
    try {
      acked.push(await bob.api.send({ username: alice.username }, `unary ${i}`, `u-${i}`));
    } catch {
      // Not acknowledged: the server may or may not have stored it.
    }
  });
  for (let i = 0; i < 400; i++) stream.send({ username: bob.username }, `stream ${i}`, `s-${i}`);

  t.is((await first.exited).signal, "SIGKILL");
  await unary;
  t.true(streamAcks >= KILL_AT);
  t.true(acked.length < 600, "the server died with sends still unacknowledged");

  const second = await t.context.spawn(env);
  const api = t.context.track(new ParleyApi(second.address, alice.token));
  const history = await fullHistory(api, acked[0].conversationId);
  t.deepEqual(seqs(history), range(1, history.length), "the stored seqs have no gap");
  const stored = new Map(history.map((m) => [m.id, m]));
  const lost = acked.filter((m) => {
    const s = stored.get(m.id);
    return s === undefined || s.seq !== m.seq || s.body !== m.body || s.clientMsgId !== m.clientMsgId;
  });
  t.deepEqual(lost.map(sameMessage), [], "acknowledged messages missing after the restart");
  t.is(new Set(acked.map((m) => m.id)).size, acked.length);
});

// ---------------------------------------------------------------------------
// 2. Ordered, gap-free sequences

test.serial("concurrent senders through Send and Connect get seqs 1..N with no gap, and every receiver gets each once, in order", async (t) => {
  const server = await t.context.server(NO_RATE_LIMIT);
  const address = server.address;
  const senders = await Promise.all(range(1, 5).map(() => newUser(address, "snd")));
  const reader = await newUser(address, "rd");
  const rawReader = await newUser(address, "raw");
  const group = await senders[0].api.createGroup(uniqueName("gapfree"));
  await Promise.all([...senders.slice(1), reader, rawReader].map((u) => u.api.joinGroup(group.name)));

  const inboxes: Inbox[] = await Promise.all([...senders, reader].map((u) => connect(u, address)));
  for (const inbox of inboxes) t.context.track(inbox.client);
  const raw = t.context.track(RawStream.connect(address, rawReader.token).hello());
  await raw.until(() => raw.caughtUp, "raw reader caught up");

  const PER_SENDER = 40;
  const targets: Target[] = [{ group: group.name }, BROADCAST];
  const acks = (
    await Promise.all(
      senders.map((sender, s) =>
        Promise.all(
          range(0, PER_SENDER * targets.length - 1).map((i) => {
            const to = targets[i % targets.length];
            const body = `${sender.username} #${i}`;
            const id = `gap-${s}-${i}`;
            // Half unary, half on the stream, interleaved.
            return i % 4 < 2 ? sender.api.send(to, body, id) : inboxes[s].client.send(to, body, id);
          }),
        ),
      ),
    )
  ).flat();

  const total = senders.length * PER_SENDER;
  const conversations = [group.conversationId, "broadcast"];
  for (const id of conversations) {
    t.deepEqual(
      seqs(of(acks, id)).sort((a, b) => a - b),
      range(1, total),
      `acks in ${id}`,
    );
  }

  // A last message in each conversation: once a receiver has it, anything earlier has arrived too.
  await Promise.all(targets.map((to) => senders[0].api.send(to, "the end", `gap-end-${to.group ?? "b"}`)));
  const last = total + 1;
  const has = (messages: Message[], id: string) => messages.some((m) => m.conversationId === id && m.seq === last);
  await raw.until(() => conversations.every((id) => has(raw.messages(), id)), "raw reader got everything");
  await Promise.all(inboxes.map((inbox) => inbox.until(() => conversations.every((id) => has(inbox.messages, id)), "everything", WAIT_MS)));

  for (const id of conversations) {
    const history = await fullHistory(reader.api, id);
    t.deepEqual(seqs(history), range(1, last), `history of ${id}`);
    t.is(new Set(history.map((m) => `${m.sender}/${m.clientMsgId}`)).size, last, `one copy of each send in ${id}`);
    t.deepEqual(history.map((m) => m.body).sort(), [...acks.filter((m) => m.conversationId === id).map((m) => m.body), "the end"].sort());
    // Exactly what the server wrote on a raw stream: no duplicate, no disorder.
    t.deepEqual(raw.messages(id).map(sameMessage), history.map(sameMessage), `raw stream in ${id}`);
    for (const inbox of inboxes) {
      t.deepEqual(of(inbox.messages, id).map(sameMessage), history.map(sameMessage), `live receiver in ${id}`);
    }
  }
});

// ---------------------------------------------------------------------------
// 3. Idempotent sends

test.serial("a repeated client_msg_id returns the original message, over Send and Connect, one after another and at once", async (t) => {
  const server = await t.context.server(NO_RATE_LIMIT);
  const address = server.address;
  const alice = await newUser(address, "idem");
  const bob = await newUser(address, "idem");
  const toBob: Target = { username: bob.username };
  const toAlice: Target = { username: alice.username };

  const bobStream = t.context.track(RawStream.connect(address, bob.token).hello());
  const aliceStream = t.context.track(RawStream.connect(address, alice.token).hello());
  await bobStream.until(() => bobStream.caughtUp, "bob caught up");
  await aliceStream.until(() => aliceStream.caughtUp, "alice caught up");

  // One after another, unary.
  const first = await alice.api.send(toBob, "hello", "same-1");
  const again = await alice.api.send(toBob, "hello", "same-1");
  t.deepEqual(sameMessage(again), sameMessage(first));
  t.is(first.seq, 1);

  // At once, unary.
  const burst = await Promise.all(range(1, 10).map(() => alice.api.send(toBob, "burst", "same-2")));
  t.is(new Set(burst.map((m) => m.id)).size, 1);
  t.is(burst[0].seq, 2);

  // On the stream, repeated in one go, then once more through Send.
  for (let i = 0; i < 5; i++) aliceStream.send(toBob, "streamed", "same-3");
  await aliceStream.until(() => aliceStream.acks().filter((m) => m.clientMsgId === "same-3").length === 5, "five acks");
  const streamed = aliceStream.acks().filter((m) => m.clientMsgId === "same-3");
  t.is(new Set(streamed.map((m) => m.id)).size, 1);
  t.is(streamed[0].seq, 3);
  t.deepEqual(sameMessage(await alice.api.send(toBob, "streamed", "same-3")), sameMessage(streamed[0]));

  // Stream and unary racing each other with one id.
  for (let i = 0; i < 3; i++) aliceStream.send(toBob, "raced", "same-4");
  const racedUnary = await Promise.all(range(1, 3).map(() => alice.api.send(toBob, "raced", "same-4")));
  await aliceStream.until(() => aliceStream.acks().filter((m) => m.clientMsgId === "same-4").length === 3, "three acks");
  const raced = [...racedUnary, ...aliceStream.acks().filter((m) => m.clientMsgId === "same-4")];
  t.is(new Set(raced.map((m) => m.id)).size, 1);
  t.is(raced[0].seq, 4);

  // Another sender may use the same id: it is a new message.
  const bobs = await bob.api.send(toAlice, "mine too", "same-1");
  t.not(bobs.id, first.id);
  t.is(bobs.seq, 5);
  t.is(bobs.sender, bob.username);

  // The duplicates took no seq: the next message is the next number.
  const next = await alice.api.send(toBob, "next", "next-1");
  t.is(next.seq, 6);

  const history = await fullHistory(alice.api, first.conversationId);
  t.deepEqual(
    history.map((m) => [m.seq, m.sender, m.clientMsgId]),
    [
      [1, alice.username, "same-1"],
      [2, alice.username, "same-2"],
      [3, alice.username, "same-3"],
      [4, alice.username, "same-4"],
      [5, bob.username, "same-1"],
      [6, alice.username, "next-1"],
    ],
  );
  // Receivers got each message once: the retries were not delivered again.
  await bobStream.until(() => bobStream.messages().some((m) => m.seq === 6), "bob got the last one");
  t.deepEqual(bobStream.messages().map(sameMessage), history.map(sameMessage));
});

// ---------------------------------------------------------------------------
// 4. Resume without loss

test.serial("a client resuming with its cursors gets exactly what it missed, once, in order, then caught_up", async (t) => {
  const server = await t.context.server(NO_RATE_LIMIT);
  const address = server.address;
  const alice = await newUser(address, "res");
  const bob = await newUser(address, "res");
  const carol = await newUser(address, "res");
  const group = await bob.api.createGroup(uniqueName("resume"));
  await alice.api.joinGroup(group.name);

  const before = await connect(alice, address);
  t.context.track(before.client);
  const dm = await bob.api.send({ username: alice.username }, "dm before", "dm-0");
  await bob.api.send({ group: group.name }, "group before", "g-0");
  await carol.api.send(BROADCAST, "broadcast before", "b-0");
  await before.until(() => before.messages.length === 3, "the first three");
  const cursors = before.client.getCursors();
  t.deepEqual(
    cursors.map((c) => [c.conversationId, c.seq]).sort(),
    [
      [dm.conversationId, 1],
      [group.conversationId, 1],
      ["broadcast", 1],
    ].sort(),
  );
  before.client.close();

  // While Alice is away.
  const missed: Message[] = [];
  for (let i = 1; i <= 3; i++) {
    missed.push(await bob.api.send({ username: alice.username }, `dm ${i}`, `dm-${i}`));
    missed.push(await bob.api.send({ group: group.name }, `group ${i}`, `g-${i}`));
    missed.push(await carol.api.send(BROADCAST, `broadcast ${i}`, `b-${i}`));
    missed.push(await alice.api.send({ username: bob.username }, `alice elsewhere ${i}`, `a-${i}`));
  }
  const conversations = [dm.conversationId, group.conversationId, "broadcast"];

  // What the server writes, frame by frame, for these cursors.
  const raw = t.context.track(RawStream.connect(address, alice.token).hello(cursors));
  await raw.until(() => raw.caughtUp, "raw caught up");
  const messagesAndCaughtUp = raw.frames.filter((f) => f.message || f.caughtUp);
  t.truthy(messagesAndCaughtUp.at(-1)?.caughtUp, "caught_up comes after the replay");
  t.is(raw.replayed().length, missed.length, "nothing already seen is replayed");
  for (const id of conversations) t.deepEqual(of(raw.replayed(), id).map(sameMessage), of(missed, id).map(sameMessage));
  raw.close();

  // The reconnecting client started from the old client's cursors.
  const after = loggedClient(t, alice, address, cursors);
  await after.until(() => after.caughtUp > 0, "alice caught up from her cursors", WAIT_MS);
  t.is(after.log.at(-1), "caught_up");
  t.is(after.log.indexOf("caught_up"), missed.length);
  for (const id of conversations) t.deepEqual(of(after.messages, id).map(sameMessage), of(missed, id).map(sameMessage));

  // Live sends racing a resume: the resumed stream must neither lose nor repeat any of them.
  const liveCursors = after.client.getCursors();
  const racing = pool(60, 3, (i) =>
    i % 3 === 0
      ? bob.api.send({ group: group.name }, `race ${i}`, `race-${i}`)
      : i % 3 === 1
        ? carol.api.send(BROADCAST, `race ${i}`, `race-${i}`)
        : bob.api.send({ username: alice.username }, `race ${i}`, `race-${i}`),
  );
  const resumed = t.context.track(RawStream.connect(address, alice.token).hello(liveCursors));
  await racing;
  const ends = await Promise.all(conversations.map((id) => bob.api.getHistory(id, 0, 1).then((p) => p.messages[0].seq)));
  await resumed.until(
    () => conversations.every((id, i) => resumed.messages(id).some((m) => m.seq === ends[i])),
    "the resumed stream got the last message of each conversation",
  );
  for (const [i, id] of conversations.entries()) {
    const from = liveCursors.find((c) => c.conversationId === id)?.seq ?? 0;
    t.deepEqual(seqs(resumed.messages(id)), range(from + 1, ends[i]), `resumed ${id}: each once, in order`);
  }
  await eventually(
    async () => after.client.getCursors(),
    (c) => conversations.every((id, i) => c.find((x) => x.conversationId === id)?.seq === ends[i]),
  );
  for (const [i, id] of conversations.entries()) {
    t.deepEqual(seqs(of(after.messages, id)), range(2, ends[i]), `the reconnecting client in ${id}`);
  }
});

// ---------------------------------------------------------------------------
// 4b. The offline queue

test.serial("without cursors a stream replays everything after the read cursor, and caps each conversation at the newest 500", async (t) => {
  const server = await t.context.server(NO_RATE_LIMIT);
  const address = server.address;
  const xavier = await newUser(address, "off");
  const bob = await newUser(address, "off");
  const carol = await newUser(address, "off");
  const group = await bob.api.createGroup(uniqueName("offline"));
  await xavier.api.joinGroup(group.name);

  // Xavier has never connected a stream.
  const sent: Message[] = [];
  for (let i = 1; i <= 10; i++) {
    sent.push(await bob.api.send({ username: xavier.username }, `dm ${i}`, `dm-${i}`));
    sent.push(await bob.api.send({ group: group.name }, `group ${i}`, `g-${i}`));
    sent.push(await carol.api.send(BROADCAST, `broadcast ${i}`, `b-${i}`));
  }
  const dmId = sent[0].conversationId;
  t.is(await xavier.api.markRead(dmId, 4), 4);
  t.is(await xavier.api.markRead(group.conversationId, 6), 6);
  t.is(await xavier.api.markRead(dmId, 2), 4, "the read cursor never moves backwards");

  const unread = Object.fromEntries((await xavier.api.listConversations()).map((c) => [c.id, [c.lastReadSeq, c.unread]]));
  t.deepEqual(unread, { [dmId]: [4, 6], [group.conversationId]: [6, 4], broadcast: [0, 10] });

  const stream = t.context.track(RawStream.connect(address, xavier.token).hello());
  await stream.until(() => stream.caughtUp, "xavier caught up");
  t.deepEqual(seqs(of(stream.replayed(), dmId)), range(5, 10));
  t.deepEqual(seqs(of(stream.replayed(), group.conversationId)), range(7, 10));
  t.deepEqual(seqs(of(stream.replayed(), "broadcast")), range(1, 10));
  t.is(stream.replayed().length, 6 + 4 + 10);
  for (const m of stream.replayed()) t.deepEqual(sameMessage(m), sameMessage(sent.find((s) => s.id === m.id) as Message));
  stream.close();

  // A reconnecting client without cursors gets the same offline queue.
  const inbox = loggedClient(t, xavier, address);
  await inbox.until(() => inbox.caughtUp > 0, "xavier caught up", WAIT_MS);
  t.deepEqual(seqs(of(inbox.messages, dmId)), range(5, 10));
  t.deepEqual(seqs(of(inbox.messages, group.conversationId)), range(7, 10));
  t.is(inbox.log.indexOf("caught_up"), 20);

  // 510 messages while Yvonne is offline: the replay is the newest 500; GetHistory pages the rest.
  const yvonne = await newUser(address, "cap");
  const zed = await newUser(address, "cap");
  const flood = await pool(510, 16, (i) => zed.api.send({ username: yvonne.username }, `flood ${i}`, `f-${i}`));
  const floodId = flood[0].conversationId;
  t.deepEqual(
    seqs(flood).sort((a, b) => a - b),
    range(1, 510),
  );
  const capped = t.context.track(RawStream.connect(address, yvonne.token).hello());
  await capped.until(() => capped.caughtUp, "yvonne caught up");
  t.deepEqual(seqs(of(capped.replayed(), floodId)), range(11, 510));
  const older = await yvonne.api.getHistory(floodId, 11, 200);
  t.deepEqual(seqs(older.messages), range(1, 10));
  t.false(older.hasMore);
  const history = await fullHistory(yvonne.api, floodId);
  t.deepEqual(history.map(sameMessage), [...older.messages, ...of(capped.replayed(), floodId)].map(sameMessage));
});

// ---------------------------------------------------------------------------
// 7. Slow consumers

test.serial("a consumer that stops reading is ended with RESOURCE_EXHAUSTED, others keep receiving, and it resumes without loss", async (t) => {
  const server = await t.context.server({ ...NO_RATE_LIMIT, STREAM_QUEUE_LIMIT: "20" });
  const address = server.address;
  const slow = await newUser(address, "slow");
  const fast = await newUser(address, "fast");
  const flooder = await newUser(address, "flood");

  const stream = t.context.track(RawStream.connect(address, slow.token).hello());
  await stream.until(() => stream.caughtUp, "slow caught up");
  await eventually(
    () => flooder.api.listOnlineUsers(),
    (online) => online.includes(slow.username),
  );
  stream.call.pause();
  const other = await connect(fast, address);
  t.context.track(other.client);

  const COUNT = 3000;
  const body = (i: number) => `${String(i).padStart(6, "0")} ${"x".repeat(4000 - 7)}`;
  const flood = await pool(COUNT, 16, async (i) => {
    const message = await flooder.api.send({ username: slow.username }, body(i), `slow-${i}`);
    if (i % 100 === 0) await flooder.api.send(BROADCAST, `broadcast ${i}`, `b-${i}`);
    return message;
  });
  const dmId = flood[0].conversationId;
  t.deepEqual(
    seqs(flood).sort((a, b) => a - b),
    range(1, COUNT),
  );

  // The server let go of the stream without the client reading a thing: the user went offline.
  await eventually(
    () => flooder.api.listOnlineUsers(),
    (online) => !online.includes(slow.username) && online.includes(fast.username),
  );

  // Everyone else kept receiving throughout.
  await other.until(() => other.messages.filter((m) => m.conversationId === "broadcast").length === COUNT / 100, "the broadcasts");
  t.deepEqual(seqs(of(other.messages, "broadcast")), range(1, COUNT / 100));
  const after = await flooder.api.send({ username: fast.username }, "still here", "after-flood");
  await other.until(() => other.messages.some((m) => m.id === after.id), "a DM after the flood");

  // Reading again shows what was queued, then the status.
  stream.call.resume();
  const final = await stream.done;
  t.is(final.code, status.RESOURCE_EXHAUSTED, final.details);
  const received = of(stream.messages(), dmId);
  t.true(received.length < COUNT, "the slow stream was not sent everything");
  t.deepEqual(seqs(received), range(1, received.length), "what it got is in order, without gaps");

  // Resuming from its cursor, it gets every other message, once and in order.
  const cursor = { conversationId: dmId, seq: received.length };
  const resumed = loggedClient(t, slow, address, [cursor]);
  await resumed.until(() => resumed.caughtUp > 0, "slow caught up from its cursor", 60_000);
  const got = of(resumed.messages, dmId);
  t.deepEqual(seqs(got), range(received.length + 1, COUNT), "the rest of the DM, once each");
  const acked = new Map(flood.map((m) => [m.seq, m]));
  t.deepEqual(
    [...received, ...got].map((m) => [m.seq, m.id, m.body]),
    range(1, COUNT).map((seq) => [seq, acked.get(seq)?.id, acked.get(seq)?.body]),
  );
});
