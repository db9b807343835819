// The `batch` frame as clients see it: a client that sets accept_batch (in
// hello, or in SubscribeRequest) gets what a busy turn queued in one batch
// frame, holding exactly the frames, in the order, that a client without it
// gets one by one; a client that did not ask never sees a batch.
import anyTest, { type TestFn } from "ava";
import type { ServerFrame } from "../gen/parley/chat/v1/chat.js";
import { bearer } from "../services/client/api.js";
import { newUser } from "./helpers/clients.js";
import { range } from "./helpers/history.js";
import { freshDatabase } from "./helpers/infra.js";
import { RawStream } from "./helpers/raw-stream.js";
import { NO_RATE_LIMIT, startServer, type InProcessServer } from "./helpers/servers.js";

const test = anyTest as TestFn<{ server: InProcessServer }>;

test.before(async (t) => {
  t.context.server = await startServer({ ...NO_RATE_LIMIT, REDIS_URL: undefined, DATABASE_URL: await freshDatabase() });
});
test.after.always(async (t) => {
  await t.context.server?.shutdown();
});

/** What a frame is, for comparing streams: its kind and, for messages and acks, the message's place. */
const shape = (f: ServerFrame) =>
  f.message ? `message ${f.message.seq}` : f.sent ? `sent ${f.sent.clientMsgId}` : (Object.keys(f).find((k) => f[k as keyof ServerFrame]) ?? "?");

test("Connect: a burst of sends comes back in batch frames to a client that asked, frame for frame what a client that did not gets", async (t) => {
  const { address } = t.context.server;
  const [ana, ben] = await Promise.all([newUser(address, "batch"), newUser(address, "batch")]);
  const batching = RawStream.connect(address, ana.token).hello([], true);
  const plain = RawStream.connect(address, ben.token).hello([], false);
  t.teardown(() => {
    batching.close();
    plain.close();
  });
  await Promise.all([batching.until(() => batching.caughtUp, "ana caught up"), plain.until(() => plain.caughtUp, "ben caught up")]);

  const ids = range(1, 60).map((i) => `b-${i}`);
  for (const id of ids) batching.send({ username: ben.username }, `message ${id}`, id);
  await batching.until(() => batching.acks().length === ids.length && batching.messages().length === ids.length, "every ack and message");
  await plain.until(() => plain.messages().length === ids.length, "ben got every message");

  // Ana's own stream: each ack, and each message as the DM's other member, in seq order, once.
  t.deepEqual(
    batching.acks().map((m) => m.clientMsgId),
    ids,
  );
  t.deepEqual(
    batching.messages().map((m) => m.seq),
    range(1, ids.length),
  );
  // Ben, who did not ask, gets single frames: the same messages.
  t.true(plain.writes.every((w) => w.batch === undefined));
  t.deepEqual(
    plain.messages().map((m) => [m.seq, m.body]),
    batching.messages().map((m) => [m.seq, m.body]),
  );
  // Ana's writes: fewer than her frames, and at least one batch held several.
  const batches = batching.writes.filter((w) => w.batch);
  t.true(batches.length > 0 && batches.some((w) => (w.batch?.frames.length ?? 0) > 1), `batches: ${batches.map((w) => w.batch?.frames.length)}`);
  t.true(batching.writes.length < batching.frames.length);
  t.true(
    batches.every((w) => w.batch?.frames.every((f) => f.batch === undefined)),
    "a batch never nests",
  );
});

test("Subscribe with accept_batch: the replay and the live messages arrive batched, complete and in order, caught_up between", async (t) => {
  const { address } = t.context.server;
  const [ana, ben] = await Promise.all([newUser(address, "batch"), newUser(address, "batch")]);
  const sender = RawStream.connect(address, ana.token).hello();
  t.teardown(() => sender.close());
  await sender.until(() => sender.caughtUp, "ana caught up");
  for (const i of range(1, 300)) sender.send({ username: ben.username }, `offline ${i}`, `o-${i}`);
  await sender.until(() => sender.acks().length === 300, "300 acks");

  const subscribe = (acceptBatch: boolean) => new RawStream(ben.api.chat.subscribe({ cursors: [], acceptBatch }, bearer(ben.token)));
  const [batched, single] = [subscribe(true), subscribe(false)];
  t.teardown(() => {
    batched.close();
    single.close();
  });
  await Promise.all([batched.until(() => batched.caughtUp, "batched caught up"), single.until(() => single.caughtUp, "single caught up")]);
  for (const i of range(1, 40)) sender.send({ username: ben.username }, `live ${i}`, `l-${i}`);
  await batched.until(() => batched.messages().length === 340, "every message, batched");
  await single.until(() => single.messages().length === 340, "every message, single");

  t.deepEqual(batched.frames.map(shape), single.frames.map(shape));
  t.deepEqual(
    batched.messages().map((m) => m.seq),
    range(1, 340),
  );
  t.is(batched.replayed().length, 300);
  t.true(batched.writes.length < batched.frames.length / 2, `${batched.writes.length} writes for ${batched.frames.length} frames`);
  t.true(single.writes.every((w) => w.batch === undefined));
});
