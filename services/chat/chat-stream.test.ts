// One stream against a fake transport, on a fake clock: backpressure, the
// slow-consumer limit, the replay hand-over, and the sequencer's gap wait,
// which a test passes by moving the clock (`fake.tickAsync`), never sleeping.
import test from "ava";
import { pino } from "pino";
import { ServerFrame } from "../../gen/parley/chat/v1/chat.js";
import { fakeClock } from "../../test/helpers/fake-clock.js";
import type { ErrorKind } from "../lib/app-error.js";
import { ChatStream, type FrameSink } from "./chat-stream.js";
import { encodeFrame } from "./frames.js";
import type { MessageRecord } from "./message-store.js";

/** A transport whose buffer holds `capacity` frames: write() returns false once it is full, until drain(). */
class FakeSink implements FrameSink {
  readonly frames: Buffer[] = [];
  readonly ends: [ErrorKind | undefined, string | undefined][] = [];
  private buffered = 0;
  private drainCallbacks: (() => void)[] = [];
  private closeCallbacks: (() => void)[] = [];

  constructor(private readonly capacity = Infinity) {}

  write(frame: Buffer): boolean {
    this.frames.push(frame);
    this.buffered += 1;
    return this.buffered < this.capacity;
  }
  get written(): string[] {
    return this.frames.map((f) => f.toString());
  }
  onDrain(callback: () => void): void {
    this.drainCallbacks.push(callback);
  }
  end(kind?: ErrorKind, reason?: string): void {
    this.ends.push([kind, reason]);
  }
  onClose(callback: () => void): void {
    this.closeCallbacks.push(callback);
  }

  /** The client read everything: the buffer empties and 'drain' fires. */
  drain(): void {
    this.buffered = 0;
    for (const callback of this.drainCallbacks.splice(0)) callback();
  }
  close(): void {
    for (const callback of this.closeCallbacks.splice(0)) callback();
  }
}

const frame = (text: string) => Buffer.from(text);

/** The sequencer's default gap wait, in ms: a gap is loaded once this has passed. */
const GAP_WAIT_MS = 100;

function setup(options: { capacity?: number; queueLimit?: number; acceptBatch?: boolean; loadRange?: () => Promise<MessageRecord[]> } = {}) {
  const sink = new FakeSink(options.capacity);
  const { fake, clock } = fakeClock();
  const stream = new ChatStream({
    user: { id: 7, username: "alice" },
    sessionId: 1,
    sink,
    queueLimit: options.queueLimit ?? 100,
    acceptBatch: options.acceptBatch,
    loadRange: options.loadRange ?? (async () => []),
    log: pino({ level: "silent" }),
    clock,
  });
  return { sink, stream, fake };
}

test("writes frames in order while the transport accepts them", (t) => {
  const { sink, stream } = setup();
  for (const text of ["a", "b", "c"]) stream.send(frame(text));
  t.deepEqual(sink.written, ["a", "b", "c"]);
});

test("stops writing when write() returns false and resumes on drain", (t) => {
  const { sink, stream } = setup({ capacity: 2 });
  for (const text of ["1", "2", "3", "4", "5"]) stream.send(frame(text));
  t.deepEqual(sink.written, ["1", "2"]);
  sink.drain();
  t.deepEqual(sink.written, ["1", "2", "3", "4"]);
  sink.drain();
  t.deepEqual(sink.written, ["1", "2", "3", "4", "5"]);
  t.false(stream.isEnded);
});

test("replay() waits for drain while the transport is full", async (t) => {
  const { sink, stream, fake } = setup({ capacity: 1 });
  let done = false;
  const replaying = stream.replay("c", 1, frame("r1")).then(() => {
    done = true;
  });
  await fake.tickAsync(0); // lets the replay run as far as it can
  t.false(done);
  t.deepEqual(sink.written, ["r1"]);
  sink.drain();
  await replaying;
  t.true(done);
});

test("a queue beyond queueLimit ends the stream with resource_exhausted", (t) => {
  const { sink, stream } = setup({ capacity: 1, queueLimit: 3 });
  stream.send(frame("written"));
  for (const text of ["q1", "q2", "q3"]) stream.send(frame(text));
  t.false(stream.isEnded, "exactly queueLimit queued is still fine");
  stream.send(frame("one too many"));
  t.true(stream.isEnded);
  t.is(sink.ends.length, 1);
  t.is(sink.ends[0][0], "resource_exhausted");
  sink.drain();
  stream.send(frame("after the end"));
  t.deepEqual(sink.written, ["written"], "the queue is dropped, not flushed");
});

test("live messages buffered during the replay are bounded by queueLimit too", (t) => {
  const { sink, stream } = setup({ queueLimit: 2 });
  stream.offerMessage("c", 1, frame("m1"));
  stream.offerMessage("c", 2, frame("m2"));
  t.false(stream.isEnded);
  stream.offerMessage("c", 3, frame("m3"));
  t.deepEqual(
    sink.ends.map(([kind]) => kind),
    ["resource_exhausted"],
  );
});

test("live messages offered before caughtUp() follow it, without the ones replayed", async (t) => {
  const { sink, stream } = setup();
  stream.send(frame("ready"));
  stream.offerMessage("c", 3, frame("live3"));
  stream.offerMessage("c", 2, frame("live2"));
  await stream.replay("c", 1, frame("replay1"));
  await stream.replay("c", 2, frame("replay2"));
  t.deepEqual(sink.written, ["ready", "replay1", "replay2"], "nothing live before caught_up");
  stream.caughtUp(new Map([["c", 2]]), frame("caught_up"));
  t.deepEqual(sink.written, ["ready", "replay1", "replay2", "caught_up", "live3"]);
  stream.offerMessage("c", 3, frame("live3 again"));
  stream.offerMessage("c", 4, frame("live4"));
  t.deepEqual(sink.written.slice(4), ["live3", "live4"]);
});

test("replay() skips seqs the stream already has", async (t) => {
  const { sink, stream } = setup();
  stream.follow("g", 4);
  await stream.replay("g", 4, frame("g4"));
  await stream.replay("g", 5, frame("g5"));
  await stream.replay("g", 5, frame("g5 again"));
  t.deepEqual(sink.written, ["g5"]);
});

test("caughtUp() positions cover conversations that had nothing to replay", (t) => {
  const { sink, stream } = setup();
  stream.offerMessage("g", 10, frame("old"));
  stream.offerMessage("g", 11, frame("new"));
  stream.caughtUp(new Map([["g", 10]]), frame("caught_up"));
  t.deepEqual(sink.written, ["caught_up", "new"]);
});

test("a live gap is filled from loadRange as message frames", async (t) => {
  const record = (seq: number): MessageRecord => ({
    id: 100 + seq,
    conversationId: "c",
    seq,
    senderId: 2,
    sender: "bob",
    toKind: "group",
    toName: "team",
    body: `body ${seq}`,
    clientMsgId: `m${seq}`,
    sentAt: new Date(0),
  });
  const { sink, stream, fake } = setup({ loadRange: async () => [record(2)] });
  stream.caughtUp(new Map([["c", 1]]), frame("caught_up"));
  stream.offerMessage("c", 3, frame("live3"));
  await fake.tickAsync(GAP_WAIT_MS - 1);
  t.deepEqual(sink.written, ["caught_up"], "the gap is waited for first");
  await fake.tickAsync(1);
  t.is(sink.written.length, 3);
  const filled = ServerFrame.decode(sink.frames[1]);
  t.is(filled.message?.seq, 2);
  t.is(filled.message?.body, "body 2");
  t.is(sink.written[2], "live3");
});

test("a failing loadRange ends the stream with unavailable", async (t) => {
  const { sink, stream, fake } = setup({
    loadRange: async () => {
      throw new Error("db down");
    },
  });
  stream.caughtUp(new Map([["c", 1]]), frame("caught_up"));
  stream.offerMessage("c", 5, frame("live5"));
  await fake.tickAsync(GAP_WAIT_MS - 1);
  t.false(stream.isEnded);
  await fake.tickAsync(1);
  t.true(stream.isEnded);
  t.deepEqual(
    sink.ends.map(([kind]) => kind),
    ["unavailable"],
  );
  t.deepEqual(sink.written, ["caught_up"]);
});

test("follow() and unfollow() are stamped with the stream's clock", async (t) => {
  const { stream, fake } = setup();
  t.is(stream.membershipChangedAt("g"), 0, "never changed");
  stream.follow("g", 3);
  t.is(stream.membershipChangedAt("g"), fake.now);
  await fake.tickAsync(1_500);
  stream.unfollow("g");
  t.is(stream.membershipChangedAt("g"), fake.now);
  t.false(stream.conversations.has("g"));
});

test("end() is idempotent and calls each onEnd listener once", (t) => {
  const { sink, stream } = setup();
  const calls: string[] = [];
  stream.onEnd(() => calls.push("first"));
  stream.onEnd(() => calls.push("second"));
  stream.end();
  stream.end("unavailable", "draining");
  sink.close();
  t.deepEqual(calls, ["first", "second"]);
  t.deepEqual(sink.ends, [[undefined, undefined]]);
  stream.onEnd(() => calls.push("late"));
  t.deepEqual(calls, ["first", "second", "late"], "a listener added after the end runs at once");
});

test("the client going away ends the stream", (t) => {
  const { sink, stream } = setup();
  let ended = 0;
  stream.onEnd(() => ended++);
  sink.close();
  t.true(stream.isEnded);
  t.is(ended, 1);
  stream.send(frame("too late"));
  t.deepEqual(sink.written, []);
});

test("end() releases a replay waiting for drain", async (t) => {
  const { stream } = setup({ capacity: 1 });
  const replaying = stream.replay("c", 1, frame("r1"));
  stream.end("unavailable", "draining");
  await replaying;
  t.true(stream.isEnded);
});

/** A valid frame that says `nonce`, and the nonces of what a write holds (a batch's frames, or one frame). */
const pong = (nonce: string) => encodeFrame({ pong: { nonce } });
const nonces = (write: Buffer) => {
  const decoded = ServerFrame.decode(write);
  return (decoded.batch ? decoded.batch.frames : [decoded]).map((f) => f.pong?.nonce);
};
/** Lets the end of this event-loop turn pass, when a batching stream writes. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

test("a batching stream writes what one turn queued as one batch frame, in order; a lone frame goes as it is", async (t) => {
  const { sink, stream } = setup({ acceptBatch: true });
  for (const n of ["a", "b", "c"]) stream.send(pong(n));
  t.is(sink.frames.length, 0, "nothing is written before the turn ends");
  await nextTurn();
  t.deepEqual(sink.frames.map(nonces), [["a", "b", "c"]]);
  t.truthy(ServerFrame.decode(sink.frames[0]).batch);
  stream.send(pong("d"));
  await nextTurn();
  t.deepEqual(ServerFrame.decode(sink.frames[1]), { ...ServerFrame.decode(pong("d")) });
});

test("a batching stream splits a long turn into batches of at most 128 frames", async (t) => {
  const { sink, stream } = setup({ acceptBatch: true, queueLimit: 1000 });
  const all = Array.from({ length: 300 }, (_, i) => String(i));
  for (const n of all) stream.send(pong(n));
  await nextTurn();
  t.deepEqual(
    sink.frames.map((w) => nonces(w).length),
    [128, 128, 44],
  );
  t.deepEqual(sink.frames.flatMap(nonces), all);
});

test("a batching stream is too slow only when more than queueLimit frames wait behind a full transport", async (t) => {
  const { sink, stream } = setup({ acceptBatch: true, capacity: 1, queueLimit: 5 });
  // One turn's 20 frames are a batch, not a slow consumer; the transport is full after it.
  for (let i = 0; i < 20; i++) stream.send(pong(`x${i}`));
  await nextTurn();
  t.deepEqual(sink.ends, []);
  t.is(sink.frames.length, 1);
  for (let i = 0; i < 5; i++) stream.send(pong(`y${i}`));
  t.deepEqual(sink.ends, []);
  stream.send(pong("one too many"));
  t.deepEqual(sink.ends, [["resource_exhausted", "consumer too slow: resume from your cursors"]]);
});

test("ending a batching stream writes what the turn queued before the last frame", async (t) => {
  const { sink, stream } = setup({ acceptBatch: true });
  stream.send(pong("ack"));
  stream.end("unavailable", "draining", pong("drain"));
  t.deepEqual(sink.frames.flatMap(nonces), ["ack"]);
  t.deepEqual(sink.ends, [["unavailable", "draining"]]);
});

test("flush() writes a batching stream's pending batch at once (every end calls it before its last frame)", (t) => {
  const { sink, stream } = setup({ acceptBatch: true });
  stream.send(pong("ack 1"));
  stream.send(pong("ack 2"));
  t.is(sink.frames.length, 0);
  stream.flush();
  t.deepEqual(sink.frames.flatMap(nonces), ["ack 1", "ack 2"]);
});
