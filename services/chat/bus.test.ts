// The bus alone (bus.ts): one contract suite run on the memory bus and on the
// Redis bus over a real Redis, then what only Redis has: pods that are
// separate instances, and the gap reported when the subscriber connection is
// killed or Redis restarts.
import anyTest, { type TestFn } from "ava";
import { Redis } from "ioredis";
import { pino } from "pino";
import type { LocalRedis } from "../../scripts/local-services.js";
import { Waiters } from "../../test/helpers/clients.js";
import { freshRedis } from "../../test/helpers/infra.js";
import { connectRedis, createRedis } from "../lib/redis.js";
import type { Bus, BusEvent } from "./bus.js";
import { Message } from "../../gen/parley/chat/v1/chat.js";
import { MemoryBus } from "./bus-memory.js";
import { encodedMessage, toMessage } from "./frames.js";
import { RedisBus } from "./bus-redis.js";

const test = anyTest as TestFn<{ redis: LocalRedis }>;
const log = pino({ level: "silent" });
const WAIT_MS = 10_000;

test.before(async (t) => {
  t.context.redis = await freshRedis();
});
test.after.always(async (t) => {
  await t.context.redis?.stop();
});

/** Every event a bus delivered, with its channel, and the gaps it reported. */
class Heard {
  readonly events: { channel: string; event: BusEvent }[] = [];
  gaps = 0;
  /** True while a `publish` call of the test is on the stack: an event delivered then was delivered inside publish. */
  static publishing = false;
  insidePublish = 0;
  private readonly waiters = new Waiters(() => `heard ${JSON.stringify(this.events)}, ${this.gaps} gaps`);

  constructor(bus: Bus) {
    bus.onEvent((channel, event) => {
      if (Heard.publishing) this.insidePublish += 1;
      this.events.push({ channel, event });
      this.waiters.wake();
    });
    bus.onGap(() => {
      this.gaps += 1;
      this.waiters.wake();
    });
  }

  on(channel: string): BusEvent[] {
    return this.events.filter((e) => e.channel === channel).map((e) => e.event);
  }

  until(check: () => boolean, what: string): Promise<void> {
    return this.waiters.until(check, what, WAIT_MS);
  }
}

async function publish(bus: Bus, channel: string, event: BusEvent): Promise<void> {
  Heard.publishing = true;
  const published = bus.publish(channel, event);
  Heard.publishing = false;
  await published;
}

let channels = 0;
/** A channel name no other test uses (the Redis is shared by the file's tests). */
const channel = (what: string) => `test:${what}:${++channels}`;

const presence = (username: string, online = true): BusEvent => ({ type: "presence", username, online });
const record = {
  id: 41,
  conversationId: "group:crew",
  seq: 7,
  senderId: 3,
  sender: "ana",
  toKind: "group" as const,
  toName: "Crew",
  body: "héllo 😀",
  clientMsgId: "c-1",
  sentAt: new Date("2026-01-02T03:04:05.678Z"),
};
/** A message event as a pod publishes it: its Message encoding, as bytes. */
const message: BusEvent = {
  type: "message",
  origin: "pod-a1",
  conversationId: record.conversationId,
  seq: record.seq,
  sentAt: record.sentAt.getTime(),
  message: Buffer.from(encodedMessage(record)),
};

interface RedisPod {
  bus: RedisBus;
  publisher: Redis;
  subscriber: Redis;
  close(): Promise<void>;
}

/** A Redis bus as a pod wires it: a command connection and a subscriber of its own (named for CLIENT KILL). */
async function redisPod(url: string, name: string): Promise<RedisPod> {
  const publisher = createRedis(url, `commands-${name}`, log, { autoPipelining: true });
  const subscriber = createRedis(url, `bus-${name}`, log, { autoResubscribe: false });
  await Promise.all([connectRedis(publisher), connectRedis(subscriber)]);
  const bus = new RedisBus(publisher, subscriber, log);
  return {
    bus,
    publisher,
    subscriber,
    close: async () => {
      await bus.close();
      publisher.disconnect();
    },
  };
}

type MakeBus = (t: { context: { redis: LocalRedis }; teardown(fn: () => unknown): void }) => Promise<Bus>;

const IMPLEMENTATIONS: [string, MakeBus][] = [
  ["memory", async () => new MemoryBus()],
  [
    "redis",
    async (t) => {
      const pod = await redisPod(t.context.redis.url, `pod${++channels}`);
      t.teardown(() => pod.close());
      return pod.bus;
    },
  ],
];

// ---------------------------------------------------------------------------
// The contract, for every implementation

for (const [impl, makeBus] of IMPLEMENTATIONS) {
  test(`${impl}: an event on a subscribed channel reaches every handler, equal to what was published, never inside publish`, async (t) => {
    const bus = await makeBus(t);
    const [first, second] = [new Heard(bus), new Heard(bus)];
    const room = channel("room");
    await bus.subscribe([room]);
    await publish(bus, room, message);
    await publish(bus, room, presence("ana"));
    await second.until(() => second.events.length === 2, "both events");
    for (const heard of [first, second]) {
      t.deepEqual(heard.on(room), [message, presence("ana")]);
      t.is(heard.insidePublish, 0);
    }
    // The bytes decode to the message that was sent, time included.
    const heard = first.on(room)[0] as Extract<BusEvent, { type: "message" }>;
    t.deepEqual(Message.decode(heard.message), Message.decode(Message.encode(toMessage(record)).finish()));
  });

  test(`${impl}: events of one channel arrive in the order they were published`, async (t) => {
    const bus = await makeBus(t);
    const heard = new Heard(bus);
    const room = channel("order");
    await bus.subscribe([room]);
    const names = Array.from({ length: 200 }, (_, i) => `u${i}`);
    await Promise.all(names.map((name) => bus.publish(room, presence(name))));
    await heard.until(() => heard.events.length === names.length, "every event");
    t.deepEqual(
      heard.on(room).map((e) => (e.type === "presence" ? e.username : e.type)),
      names,
    );
  });

  test(`${impl}: nothing arrives on a channel never subscribed, or after unsubscribe`, async (t) => {
    const bus = await makeBus(t);
    const heard = new Heard(bus);
    const [stays, leaves, never] = [channel("stays"), channel("leaves"), channel("never")];
    await bus.subscribe([stays, leaves]);
    await bus.publish(leaves, presence("before"));
    await heard.until(() => heard.on(leaves).length === 1, "the event before unsubscribe");
    await bus.unsubscribe([leaves]);
    await bus.publish(leaves, presence("after"));
    await bus.publish(never, presence("never"));
    // Published last on the same connection: once it is here, the two before it would have been.
    await bus.publish(stays, presence("barrier"));
    await heard.until(() => heard.on(stays).length === 1, "the barrier");
    t.deepEqual(heard.on(leaves), [presence("before")]);
    t.deepEqual(heard.on(never), []);
    t.is(heard.gaps, 0);
  });
}

// ---------------------------------------------------------------------------
// Redis only: pods, and gaps

test("redis: a pod hears what another pod publishes on the channels it subscribed, and only those", async (t) => {
  const [a, b] = [await redisPod(t.context.redis.url, "a"), await redisPod(t.context.redis.url, "b")];
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const [heardA, heardB] = [new Heard(a.bus), new Heard(b.bus)];
  const [shared, onlyA, onlyB] = [channel("shared"), channel("only-a"), channel("only-b")];
  await a.bus.subscribe([shared, onlyA]);
  await b.bus.subscribe([shared, onlyB]);
  await b.bus.publish(onlyA, presence("to a"));
  await a.bus.publish(onlyB, presence("to b"));
  await a.bus.publish(shared, presence("to both"));
  await heardA.until(() => heardA.events.length === 2, "a's two events");
  await heardB.until(() => heardB.events.length === 2, "b's two events");
  t.deepEqual(heardA.events, [
    { channel: onlyA, event: presence("to a") },
    { channel: shared, event: presence("to both") },
  ]);
  t.deepEqual(heardB.events, [
    { channel: onlyB, event: presence("to b") },
    { channel: shared, event: presence("to both") },
  ]);
});

test("redis: an undecodable payload is dropped, and the events after it still arrive", async (t) => {
  const pod = await redisPod(t.context.redis.url, "decode");
  const admin = new Redis(t.context.redis.url);
  t.teardown(async () => {
    admin.disconnect();
    await pod.close();
  });
  const heard = new Heard(pod.bus);
  const room = channel("garbage");
  await pod.bus.subscribe([room]);
  await admin.publish(room, "{not json");
  await pod.bus.publish(room, presence("after"));
  await heard.until(() => heard.events.length === 1, "the event after the garbage");
  t.deepEqual(heard.on(room), [presence("after")]);
});

/** The id of the connection Redis knows by `name`, from CLIENT LIST. */
async function clientId(admin: Redis, name: string): Promise<string> {
  const list = (await admin.client("LIST")) as string;
  const line = list.split("\n").find((l) => l.includes(` name=${name} `));
  if (line === undefined) throw new Error(`no connection named ${name} in ${list}`);
  return /\bid=(\d+)/.exec(line)?.[1] as string;
}

test("redis: killing the subscriber connection reports one gap; once it is back, new subscriptions deliver again", async (t) => {
  const [victim, other] = [await redisPod(t.context.redis.url, "victim"), await redisPod(t.context.redis.url, "other")];
  const admin = new Redis(t.context.redis.url);
  t.teardown(async () => {
    admin.disconnect();
    await victim.close();
    await other.close();
  });
  const [heard, otherHeard] = [new Heard(victim.bus), new Heard(other.bus)];
  const room = channel("killed");
  await victim.bus.subscribe([room]);
  await other.bus.subscribe([room]);

  await admin.client("KILL", "ID", await clientId(admin, "parley-bus-victim"));
  await heard.until(() => heard.gaps === 1, "the gap");
  await connectRedis(victim.subscriber, WAIT_MS);
  await victim.bus.subscribe([room]);
  await other.bus.publish(room, presence("after the kill"));
  await heard.until(() => heard.on(room).length === 1, "an event after the reconnect");
  t.deepEqual(heard.on(room), [presence("after the kill")]);
  t.is(heard.gaps, 1, "one kill, one gap");
  t.is(otherHeard.gaps, 0, "the other pod's subscriber was not touched");
});

test("redis: a Redis restart reports a gap, a publish meanwhile fails at once, and the bus works again once Redis is back", async (t) => {
  // A Redis of this test's own, since it is stopped.
  let redis = await freshRedis();
  const pod = await redisPod(redis.url, "restart");
  t.teardown(async () => {
    await pod.close();
    await redis.stop();
  });
  const heard = new Heard(pod.bus);
  const room = channel("restart");
  await pod.bus.subscribe([room]);

  await redis.stop();
  await heard.until(() => heard.gaps === 1, "the gap");
  const started = Date.now();
  await t.throwsAsync(pod.bus.publish(room, presence("while down")));
  t.true(Date.now() - started < 3_000, `a publish while Redis is down took ${Date.now() - started} ms`);

  redis = await freshRedis(redis.port);
  await Promise.all([connectRedis(pod.subscriber, WAIT_MS), connectRedis(pod.publisher, WAIT_MS)]);
  await pod.bus.subscribe([room]);
  await pod.bus.publish(room, presence("back"));
  await heard.until(() => heard.on(room).length === 1, "an event after the restart");
  t.deepEqual(heard.on(room), [presence("back")]);
  t.is(heard.gaps, 1);
});
