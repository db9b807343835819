// The hub alone (hub.ts): real ChatStreams writing into the smallest real
// sink, on the memory bus. What a stream's client would read is what its sink
// decoded; what the hub asked of the bus is seen through the bus itself (the
// memory bus drops events on a channel nobody subscribed).
import test from "ava";
import { pino } from "pino";
import { ServerFrame } from "../../gen/parley/chat/v1/chat.js";
import type { ErrorKind } from "../lib/app-error.js";
import { conversationChannel, userChannel } from "../lib/keys.js";
import type { BusEvent } from "./bus.js";
import { MemoryBus } from "./bus-memory.js";
import { ChatStream, type FrameSink } from "./chat-stream.js";
import { encodedMessage, encodeFrame, messageFrameOf } from "./frames.js";
import { Hub } from "./hub.js";
import type { UserRef } from "../db/schema.js";
import type { MessageRecord } from "./message-store.js";

const log = pino({ level: "silent" });

/** A transport that never pushes back: decodes what it is given, and closes once when ended, as a gRPC call does. */
class Sink implements FrameSink {
  readonly frames: ServerFrame[] = [];
  ended: { kind?: ErrorKind; reason?: string } | undefined;
  private readonly closeCallbacks: (() => void)[] = [];

  write(frame: Buffer): boolean {
    this.frames.push(ServerFrame.decode(frame));
    return true;
  }
  onDrain(): void {}
  end(kind?: ErrorKind, reason?: string, lastFrame?: Buffer): void {
    if (this.ended) return;
    if (lastFrame) this.write(lastFrame);
    this.ended = { kind, reason };
    for (const callback of this.closeCallbacks.splice(0)) callback();
  }
  onClose(callback: () => void): void {
    this.closeCallbacks.push(callback);
  }

  /** Bodies of the messages written, in order. */
  get bodies(): string[] {
    return this.frames.flatMap((f) => (f.message ? [f.message.body] : []));
  }
}

/** The memory bus, and every event it delivered to anyone (the hub or not). */
function bus() {
  const memory = new MemoryBus();
  const delivered: string[] = [];
  memory.onEvent((channel) => delivered.push(channel));
  return { memory, delivered };
}

/** Lets the memory bus deliver what was published (it delivers on a later tick). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

const ana: UserRef = { id: 1, username: "ana" };
const ben: UserRef = { id: 2, username: "ben" };
let groups = 0;
/** A group of the test's own: each conversation's seqs start at 1, and tests run concurrently. */
const newGroup = () => `group:crew${++groups}`;

let ids = 0;
/** The last seq published in each conversation: a stream delivers a conversation's seqs in order from 1. */
const seqs = new Map<string, number>();
function message(conversationId: string, body: string): BusEvent {
  const seq = (seqs.get(conversationId) ?? 0) + 1;
  seqs.set(conversationId, seq);
  const record: MessageRecord = {
    id: ++ids,
    conversationId,
    seq,
    senderId: ana.id,
    sender: ana.username,
    toKind: "group",
    toName: "crew",
    body,
    clientMsgId: `c${ids}`,
    sentAt: new Date(0),
  };
  return { type: "message", origin: "another-pod", conversationId, seq, sentAt: 0, message: encodedMessage(record) };
}

/** A live stream for `user`, added to the hub on `conversations`, past its (empty) replay. */
async function open(hub: Hub, user: UserRef, conversations: string[]): Promise<{ stream: ChatStream; sink: Sink }> {
  const sink = new Sink();
  const stream = new ChatStream({ user, sessionId: 1, sink, queueLimit: 100, loadRange: async () => [], log });
  await hub.add(stream, conversations);
  stream.caughtUp(new Map(), encodeFrame({ caughtUp: {} }));
  return { stream, sink };
}

test("a stream gets what is published on its user's channel and on its conversations, and nothing else", async (t) => {
  const CREW = newGroup();
  const { memory } = bus();
  const hub = new Hub(memory, log);
  const { sink } = await open(hub, ana, [CREW]);
  await memory.publish(conversationChannel(CREW), message(CREW, "to the crew"));
  await memory.publish(userChannel(ana.id), message("dm:1:2", "to ana"));
  await memory.publish(userChannel(ben.id), message("dm:2:3", "to ben"));
  await memory.publish(conversationChannel("group:other"), message("group:other", "elsewhere"));
  await settle();
  t.deepEqual(sink.bodies, ["to the crew", "to ana"]);
  t.is(hub.size, 1);
});

test("one event reaches every stream on the channel, several streams of one user included", async (t) => {
  const CREW = newGroup();
  const { memory } = bus();
  const hub = new Hub(memory, log);
  const streams = [await open(hub, ana, [CREW]), await open(hub, ana, [CREW]), await open(hub, ben, [CREW])];
  await memory.publish(conversationChannel(CREW), message(CREW, "all of you"));
  await memory.publish(conversationChannel(CREW), presenceOf("cleo"));
  await settle();
  for (const { sink } of streams) {
    t.deepEqual(sink.bodies, ["all of you"]);
    t.deepEqual(
      sink.frames.flatMap((f) => (f.presence ? [f.presence] : [])),
      [{ username: "cleo", online: true }],
    );
  }
});

test("a message sent on this pod reaches its streams at the commit, once each, its echo from the bus included; other pods' messages still arrive", async (t) => {
  const CREW = newGroup();
  const { memory } = bus();
  const hub = new Hub(memory, log);
  const [member, dmPeer, outsider] = [await open(hub, ana, [CREW]), await open(hub, ben, []), await open(hub, { id: 9, username: "cleo" }, [])];
  const local = message(CREW, "sent here") as Extract<BusEvent, { type: "message" }>;
  hub.deliver([conversationChannel(CREW)], CREW, local.seq, 0, messageFrameOf(local.message));
  // Delivered before any tick: no bus in between.
  t.deepEqual(member.sink.bodies, ["sent here"]);
  await memory.publish(conversationChannel(CREW), { ...local, origin: hub.origin });
  await memory.publish(conversationChannel(CREW), message(CREW, "sent on another pod"));
  // A DM on both users' channels reaches a stream once, even one on both (a DM to oneself).
  const dm = message("dm:local", "a DM") as Extract<BusEvent, { type: "message" }>;
  hub.deliver([userChannel(ana.id), userChannel(ben.id), userChannel(ben.id)], "dm:local", dm.seq, 0, messageFrameOf(dm.message));
  await settle();
  t.deepEqual(member.sink.bodies, ["sent here", "sent on another pod", "a DM"]);
  t.deepEqual(dmPeer.sink.bodies, ["a DM"]);
  t.deepEqual(outsider.sink.bodies, []);
});

test("a message event this hub published itself is skipped when it comes back from the bus; the same message from another pod is not", async (t) => {
  const CREW = newGroup();
  const { memory } = bus();
  const hub = new Hub(memory, log);
  const { sink } = await open(hub, ana, [CREW]);
  const fromElsewhere = message(CREW, "first") as Extract<BusEvent, { type: "message" }>;
  await memory.publish(conversationChannel(CREW), { ...fromElsewhere, origin: hub.origin });
  await settle();
  t.deepEqual(sink.bodies, [], "its own echo: this pod delivered it at the commit already");
  await memory.publish(conversationChannel(CREW), fromElsewhere);
  await settle();
  t.deepEqual(sink.bodies, ["first"]);
});

function presenceOf(username: string): BusEvent {
  return { type: "presence", username, online: true };
}

test("typing reaches the other users' streams, not the typer's own", async (t) => {
  const CREW = newGroup();
  const { memory } = bus();
  const hub = new Hub(memory, log);
  const [anaPhone, anaLaptop, benPhone] = [await open(hub, ana, [CREW]), await open(hub, ana, [CREW]), await open(hub, ben, [CREW])];
  const typing: BusEvent = { type: "typing", from: ana.username, fromUserId: ana.id, conversationId: CREW, toKind: "group", toName: "crew" };
  await memory.publish(conversationChannel(CREW), typing);
  await settle();
  t.deepEqual(
    benPhone.sink.frames.flatMap((f) => (f.typing ? [f.typing.from] : [])),
    ["ana"],
  );
  t.false(anaPhone.sink.frames.some((f) => f.typing));
  t.false(anaLaptop.sink.frames.some((f) => f.typing));
});

test("a stream that ends is detached; the channel is unsubscribed only when its last stream leaves", async (t) => {
  const CREW = newGroup();
  const { memory, delivered } = bus();
  const hub = new Hub(memory, log);
  const first = await open(hub, ana, [CREW]);
  const second = await open(hub, ben, [CREW]);
  first.stream.end();
  await memory.publish(conversationChannel(CREW), message(CREW, "one left"));
  await settle();
  t.deepEqual(first.sink.bodies, []);
  t.deepEqual(second.sink.bodies, ["one left"]);
  t.is(hub.size, 1);

  second.stream.end();
  await settle();
  const before = delivered.length;
  for (const channel of [conversationChannel(CREW), userChannel(ana.id), userChannel(ben.id)]) {
    await memory.publish(channel, message(CREW, "nobody"));
  }
  await settle();
  t.is(delivered.length, before, "the bus still delivered on channels the hub had left");
  t.is(hub.size, 0);
});

test("a stream that ended while it was opening is never attached", async (t) => {
  const CREW = newGroup();
  const { memory, delivered } = bus();
  const hub = new Hub(memory, log);
  const sink = new Sink();
  const stream = new ChatStream({ user: ana, sessionId: 1, sink, queueLimit: 100, loadRange: async () => [], log });
  stream.end();
  await hub.add(stream, [CREW]);
  await memory.publish(conversationChannel(CREW), message(CREW, "too late"));
  await settle();
  t.is(hub.size, 0);
  t.deepEqual(delivered, [], "the hub subscribed for a stream that had ended");
});

test("a membership event makes the user's streams follow a joined group and drop a left one", async (t) => {
  const CREW = newGroup();
  const { memory } = bus();
  const hub = new Hub(memory, log);
  const { sink, stream } = await open(hub, ana, []);
  const other = await open(hub, ben, []);
  await memory.publish(userChannel(ana.id), { type: "membership", userId: ana.id, conversationId: CREW, joined: true, lastSeq: seqs.get(CREW) ?? 0 });
  await settle();
  t.true(stream.conversations.has(CREW));
  await memory.publish(conversationChannel(CREW), message(CREW, "welcome"));
  await settle();
  t.deepEqual(sink.bodies, ["welcome"]);

  await memory.publish(userChannel(ana.id), {
    type: "membership",
    userId: ana.id,
    conversationId: CREW,
    joined: false,
    lastSeq: seqs.get(CREW) ?? 0,
  });
  await settle();
  await memory.publish(conversationChannel(CREW), message(CREW, "after leaving"));
  await settle();
  t.deepEqual(sink.bodies, ["welcome"]);
  t.false(stream.conversations.has(CREW));
  t.deepEqual(other.sink.bodies, [], "ben's stream followed ana's group");
});

test("endAll writes the last frame to every stream, ends each with the kind given, and detaches them all", async (t) => {
  const CREW = newGroup();
  const { memory, delivered } = bus();
  const hub = new Hub(memory, log);
  const streams = [await open(hub, ana, [CREW]), await open(hub, ben, [])];
  const ended = hub.endAll("unavailable", "live events may have been missed", encodeFrame({ drain: { reason: "resume" } }));
  t.is(ended, 2);
  for (const { sink } of streams) {
    t.deepEqual(sink.ended, { kind: "unavailable", reason: "live events may have been missed" });
    t.deepEqual(sink.frames.at(-1), ServerFrame.fromPartial({ drain: { reason: "resume" } }));
  }
  t.is(hub.size, 0);
  await settle();
  const before = delivered.length;
  await memory.publish(conversationChannel(CREW), message(CREW, "after the end"));
  await settle();
  t.is(delivered.length, before);
});

/** The memory bus with a connection that can drop: `gap()` tells its listeners, as the Redis bus does when its subscriber reconnects. */
class DroppingBus extends MemoryBus {
  private readonly gapListeners: (() => void)[] = [];
  override onGap(handler: () => void): void {
    this.gapListeners.push(handler);
  }
  gap(): void {
    for (const listener of this.gapListeners) listener();
  }
}

test("a bus gap ends every stream with UNAVAILABLE, so that clients resume from their cursors; a new stream is served again", async (t) => {
  const memory = new DroppingBus();
  const hub = new Hub(memory, log);
  const first = await open(hub, ana, []);
  const second = await open(hub, ben, []);
  memory.gap();
  for (const { sink } of [first, second]) t.is(sink.ended?.kind, "unavailable");
  t.is(hub.size, 0);
  const again = await open(hub, ana, []);
  await memory.publish(userChannel(ana.id), { type: "presence", username: "ben", online: true });
  await settle();
  t.deepEqual(
    again.sink.frames.flatMap((f) => (f.presence ? [f.presence.username] : [])),
    ["ben"],
  );
});
