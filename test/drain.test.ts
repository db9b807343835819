// Graceful drain (design.md, "Delivery guarantees" 6) as clients see it: a
// server process gets SIGTERM while clients are connected and a sender is
// sending, and a new server on the same database takes over.
import { setTimeout as sleep } from "node:timers/promises";
import { credentials, loadPackageDefinition, status, type ClientReadableStream, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import anyTest, { type TestFn } from "ava";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { ChatServiceClient, type Message, type Target } from "../gen/parley/chat/v1/chat.js";
import { bearer, ParleyApi } from "../services/client/api.js";
import { connect, eventually, newUser, uniqueName } from "./helpers/clients.js";
import { fullHistory, range } from "./helpers/history.js";
import { freshDatabase } from "./helpers/infra.js";
import { RawStream } from "./helpers/raw-stream.js";
import { NO_RATE_LIMIT, spawnServer, type ChildServer, type Env } from "./helpers/servers.js";

const test = anyTest as TestFn<{ cleanups: (() => unknown)[] }>;

test.before((t) => {
  t.context.cleanups = [];
});
test.after.always(async (t) => {
  for (const cleanup of t.context.cleanups.reverse()) await cleanup();
});

const WAIT_MS = 30_000;
const CHAT_SERVICE = "parley.chat.v1.ChatService";

type HealthStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

/** grpc.health.v1.Health's Watch: every status the server reports for `service`, in order. */
function watchHealth(address: string, service: string) {
  const definition = loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
  const grpc = loadPackageDefinition(definition) as unknown as { grpc: { health: { v1: { Health: ServiceClientConstructor } } } };
  const client = new grpc.grpc.health.v1.Health(address, credentials.createInsecure());
  const statuses: HealthStatus[] = [];
  const call = client.watch({ service }) as ClientReadableStream<{ status: HealthStatus }>;
  call.on("error", () => undefined);
  /** Resolves on NOT_SERVING, or when the watch ends without it. */
  const notServing = new Promise<void>((resolve) => {
    call.on("status", () => resolve());
    call.on("data", ({ status: s }: { status: HealthStatus }) => {
      statuses.push(s);
      if (s !== "NOT_SERVING") return;
      // Seen: let go of the call, so that the server is not kept waiting for it.
      call.cancel();
      resolve();
    });
  });
  const close = () => {
    call.cancel();
    client.close();
  };
  return { statuses, notServing, close };
}

const brief = (m: Message) => ({ id: m.id, seq: m.seq, sender: m.sender, body: m.body, clientMsgId: m.clientMsgId });

test("SIGTERM drains every stream, keeps every acknowledged send, exits 0, and clients resume on the next server", async (t) => {
  const env: Env = { DATABASE_URL: await freshDatabase(), REDIS_URL: undefined, ...NO_RATE_LIMIT };
  const first: ChildServer = await spawnServer(env);
  let second: ChildServer | undefined;
  t.context.cleanups.push(async () => {
    for (const server of [first, second]) {
      server?.kill("SIGKILL");
      await server?.exited;
    }
  });
  const address = first.address;

  const [alice, bob, carol, dave, erin] = await Promise.all(["al", "bo", "ca", "da", "er"].map((p) => newUser(address, p)));
  const group = await carol.api.createGroup(uniqueName("drain"));
  await Promise.all([alice, bob, dave, erin].map((u) => u.api.joinGroup(group.name)));
  const to: Target = { group: group.name };

  // Open streams of each kind: a raw Connect, a raw Subscribe, and two reconnecting clients.
  const chat = new ChatServiceClient(address, credentials.createInsecure());
  t.context.cleanups.push(() => chat.close());
  const connectCall = chat.connect(bearer(alice.token));
  const rawConnect = new RawStream(connectCall).hello();
  const rawSubscribe = new RawStream(chat.subscribe({ cursors: [], acceptBatch: false }, bearer(erin.token)));
  t.context.cleanups.push(
    () => connectCall.cancel(),
    () => rawSubscribe.call.cancel(),
  );
  await rawConnect.until(() => rawConnect.caughtUp, "alice caught up");
  await rawSubscribe.until(() => rawSubscribe.caughtUp, "erin caught up");
  const bobInbox = await connect(bob, address);
  const daveInbox = await connect(dave, address);
  t.context.cleanups.push(
    () => bobInbox.client.close(),
    () => daveInbox.client.close(),
  );
  const drains: string[] = [];
  bobInbox.client.on("drain", (reason) => drains.push(reason));

  const health = [watchHealth(address, ""), watchHealth(address, CHAT_SERVICE)];
  t.context.cleanups.push(...health.map((h) => h.close));
  await eventually(async () => health.every((h) => h.statuses.includes("SERVING")), Boolean);

  // Carol sends unary messages in a loop, Dave on his stream, through the drain.
  const acked: Message[] = [];
  let sending = true;
  let unaryFailures = 0;
  const carolLoop = (async () => {
    for (let i = 0; sending; i++) {
      try {
        acked.push(await carol.api.send(to, `carol ${i}`, `carol-${i}`));
      } catch {
        unaryFailures += 1;
        await sleep(20);
      }
    }
  })();
  const daveSends: Promise<Message>[] = [];
  const daveLoop = (async () => {
    for (let i = 0; sending; i++) {
      const send = daveInbox.client.send(to, `dave ${i}`, `dave-${i}`);
      daveSends.push(send);
      await send;
    }
  })();
  await eventually(
    async () => acked.length,
    (n) => n >= 20,
  );

  const signalledAt = Date.now();
  first.kill("SIGTERM");

  // Every health watcher sees NOT_SERVING.
  await Promise.all(health.map((h) => h.notServing));
  for (const h of health) t.deepEqual(h.statuses.slice(-1), ["NOT_SERVING"]);

  // Every stream gets `drain` as its last frame, then ends with UNAVAILABLE.
  for (const [name, stream] of [
    ["Connect", rawConnect],
    ["Subscribe", rawSubscribe],
  ] as const) {
    const final = await stream.done;
    t.is(final.code, status.UNAVAILABLE, `${name}: ${final.details}`);
    const drainAt = stream.frames.findIndex((f) => f.drain);
    t.true(drainAt >= 0, `${name} got a drain frame`);
    t.is(drainAt, stream.frames.length - 1, `${name}: nothing after drain`);
    t.truthy(stream.frames[drainAt].drain?.reason);
  }
  await eventually(
    async () => drains.length,
    (n) => n >= 1,
  );

  const exit = await first.exited;
  const drainMs = Date.now() - signalledAt;
  t.deepEqual(exit, { code: 0, signal: null });
  t.true(drainMs < 30_000, `exited after ${drainMs} ms`);
  sending = false;
  await carolLoop;
  t.true(acked.length >= 20);

  // A new server on the same database and port: the reconnecting clients find it by themselves.
  second = await spawnServer(env, first.port);
  t.is(second.address, address);
  await daveLoop; // its last send was unacknowledged at the drain; the client re-sent it
  const daveAcked = await Promise.all(daveSends);
  const carolAgain = new ParleyApi(second.address, carol.token);
  t.context.cleanups.push(() => carolAgain.close());
  const afterRestart = await carolAgain.send(to, "after the restart", "carol-after");

  const history = await fullHistory(carolAgain, group.conversationId);
  t.deepEqual(
    history.map((m) => m.seq),
    range(1, history.length),
    "no gap in the stored seqs",
  );
  const stored = new Map(history.map((m) => [m.id, m]));
  const missing = [...acked, ...daveAcked].filter((m) => {
    const s = stored.get(m.id);
    return s === undefined || s.seq !== m.seq || s.body !== m.body;
  });
  t.deepEqual(missing.map(brief), [], "acknowledged sends missing after the restart");
  t.is(new Set(history.map((m) => `${m.sender}/${m.clientMsgId}`)).size, history.length, "each send stored once");
  t.is(afterRestart.seq, history.length);

  // Bob's client resumed without anyone asking it to, and saw every message once, in order.
  for (const inbox of [bobInbox, daveInbox]) {
    // Caught up a second time: on the new server.
    await inbox.until(() => inbox.caughtUp >= 2 && inbox.messages.some((m) => m.id === afterRestart.id), "the message after the restart", WAIT_MS);
    t.deepEqual(inbox.messages.filter((m) => m.conversationId === group.conversationId).map(brief), history.map(brief));
  }
  // What the raw streams got before the drain is the same history, from the start.
  t.deepEqual(
    rawConnect.frames.flatMap((f) => (f.message ? [brief(f.message)] : [])),
    history.slice(0, rawConnect.frames.filter((f) => f.message).length).map(brief),
  );
  t.deepEqual(
    rawSubscribe.frames.flatMap((f) => (f.message ? [brief(f.message)] : [])),
    history.slice(0, rawSubscribe.frames.filter((f) => f.message).length).map(brief),
  );
  t.log(
    `drained and exited in ${drainMs} ms; ${acked.length} unary and ${daveAcked.length} stream sends acknowledged; ${unaryFailures} unary sends refused`,
  );
});

test("a stream that is behind on reading still gets drain as its last frame, after a gap-free prefix", async (t) => {
  const env: Env = { DATABASE_URL: await freshDatabase(), REDIS_URL: undefined, ...NO_RATE_LIMIT };
  const server = await spawnServer(env);
  t.context.cleanups.push(async () => {
    server.kill("SIGKILL");
    await server.exited;
  });
  const reader = await newUser(server.address, "behind");
  const writer = await newUser(server.address, "writer");

  const chat = new ChatServiceClient(server.address, credentials.createInsecure());
  t.context.cleanups.push(() => chat.close());
  const call = chat.connect(bearer(reader.token));
  t.context.cleanups.push(() => call.cancel());
  const stream = new RawStream(call).hello();
  await stream.until(() => stream.caughtUp, "caught up");
  call.pause();

  // Enough large messages that the server has to hold some back, but not enough to give up on the stream.
  const COUNT = 300;
  for (let i = 0; i < COUNT; i += 10) {
    await Promise.all(range(i, i + 9).map((j) => writer.api.send({ username: reader.username }, `${j} ${"y".repeat(4000)}`, `w-${j}`)));
  }

  const health = watchHealth(server.address, CHAT_SERVICE);
  t.context.cleanups.push(health.close);
  await eventually(async () => health.statuses.includes("SERVING"), Boolean);
  server.kill("SIGTERM");
  await health.notServing;
  t.true(health.statuses.includes("NOT_SERVING"));

  call.resume();
  const final = await stream.done;
  t.is(final.code, status.UNAVAILABLE, final.details);
  const received = stream.frames.flatMap((f) => (f.message ? [f.message.seq] : []));
  t.true(received.length < COUNT, "the stream was behind when the drain came");
  t.deepEqual(received, range(1, received.length), "what it got is a prefix, without gaps");
  t.truthy(stream.frames.at(-1)?.drain, "the last frame is drain");
  t.deepEqual(await server.exited, { code: 0, signal: null });
});
