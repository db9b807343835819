// The group commit on a real (embedded) Postgres: appends queued behind a
// statement commit together, at most 100 to a statement, in the order
// submitted; a batch that fails because of one message (text the store cannot
// keep, a client_msg_id repeated in the batch or stored before) falls back to
// one by one, so that message alone fails or gets its original. U+0000 is
// refused by the domain before it gets here; this is the store's own line of
// defence, for any text a future check lets through.
import anyTest, { type TestFn } from "ava";
import { pino } from "pino";
import { scratchDir } from "../../test/helpers/infra.js";
import { openDatabase, type Database } from "../db/client.js";
import { users } from "../db/schema.js";
import { AppError } from "../lib/app-error.js";
import { AppendBatcher } from "./append-batcher.js";
import { BROADCAST_ID, directConversationId } from "./conversation-ids.js";
import { MessageStore, type NewMessage } from "./message-store.js";
import type { AppendResult } from "./message-store.js";

const test = anyTest.serial as TestFn<{ database: Database; store: MessageStore; ana: number; ben: number }>;

test.before(async (t) => {
  const database = await openDatabase({ databaseUrl: undefined, dataDir: scratchDir("append-batcher"), log: pino({ level: "silent" }) });
  await database.migrate();
  const [ana, ben] = await database.db
    .insert(users)
    .values([
      { username: "ana", passwordHash: "x" },
      { username: "ben", passwordHash: "x" },
    ])
    .returning({ id: users.id });
  Object.assign(t.context, { database, store: new MessageStore(database.db, database.prepared), ana: ana.id, ben: ben.id });
});
test.after.always(async (t) => {
  await t.context.database?.close();
});

/** Appends `bodies` at once (so that all but the first queue up into one batch) and settles each. */
async function appendAtOnce(batcher: AppendBatcher, base: Omit<NewMessage, "body" | "clientMsgId">, bodies: string[], tag: string) {
  return Promise.allSettled(bodies.map((body, i) => batcher.append({ ...base, body, clientMsgId: `${tag}-${i}` })));
}

const seqOf = (r: PromiseSettledResult<AppendResult>) => (r.status === "fulfilled" ? r.value?.record.seq : undefined);

for (const kind of ["broadcast", "direct"] as const) {
  test(`a body the store cannot keep fails alone; its batch commits in order (${kind})`, async (t) => {
    const { store, ana, ben } = t.context;
    const batcher = new AppendBatcher(store);
    const base =
      kind === "broadcast"
        ? { conversationId: BROADCAST_ID, senderId: ana, sender: "ana", toKind: kind, toName: "" }
        : { conversationId: directConversationId(ana, ben), senderId: ana, sender: "ana", toKind: kind, toName: "ben" };
    const start = (await store.range(base.conversationId, 0, Infinity, 1_000, "newest")).length;
    const bodies = Array.from({ length: 21 }, (_, i) => (i === 10 ? "nul \u0000 here" : `body ${i}`));

    const results = await appendAtOnce(batcher, base, bodies, `${kind}-a`);
    const refused = results[10];
    t.is(refused.status, "rejected");
    t.true(refused.status === "rejected" && refused.reason instanceof AppError && refused.reason.kind === "invalid_argument");
    const good = results.filter((_, i) => i !== 10);
    t.deepEqual(
      good.map(seqOf),
      Array.from({ length: 20 }, (_, i) => start + i + 1),
    );

    const stored = await store.range(base.conversationId, start, Infinity, 1_000, "oldest");
    t.deepEqual(
      stored.map((m) => m.body),
      bodies.filter((_, i) => i !== 10),
    );

    // A batch to a group the sender is not in stores nothing, and each message hears so.
    const group = { ...base, conversationId: "group:nosuch", toKind: "group" as const, toName: "nosuch" };
    const refusedAll = await Promise.all(["a", "b", "c"].map((body, i) => batcher.append({ ...group, body, clientMsgId: `${kind}-g-${i}` })));
    t.deepEqual(refusedAll, [undefined, undefined, undefined]);
  });
}

/** The real store, counting the statements the batcher asks of it: a batch is one `appendMany`, a fallback one `append` per message. */
class CountingStore extends MessageStore {
  readonly statements: string[] = [];

  override async appendMany(...args: Parameters<MessageStore["appendMany"]>) {
    this.statements.push(`many(${args[0].length})`);
    return super.appendMany(...args);
  }

  override async append(...args: Parameters<MessageStore["append"]>) {
    this.statements.push("one");
    return super.append(...args);
  }
}

/** Ana's messages to a DM with Ben of this test's own making (a fresh pair of users), so that seqs start at 1. */
async function freshDirect(t: { context: { database: Database } }, tag: string) {
  const [a, b] = await t.context.database.db
    .insert(users)
    .values([
      { username: `a${tag}`, passwordHash: "x" },
      { username: `b${tag}`, passwordHash: "x" },
    ])
    .returning({ id: users.id });
  return { conversationId: directConversationId(a.id, b.id), senderId: a.id, sender: `a${tag}`, toKind: "direct" as const, toName: `b${tag}` };
}

test("appends queued while a statement is in flight commit together in one statement, in the order submitted", async (t) => {
  const store = new CountingStore(t.context.database.db, t.context.database.prepared);
  const batcher = new AppendBatcher(store);
  const base = await freshDirect(t, "batch");
  const bodies = Array.from({ length: 250 }, (_, i) => `m${i}`);
  const results = await appendAtOnce(batcher, base, bodies, "batch");
  t.deepEqual(
    results.map(seqOf),
    bodies.map((_, i) => i + 1),
  );
  t.true(results.every((r) => r.status === "fulfilled" && r.value?.duplicate === false));
  // The first goes alone; the 249 that queued behind it go at most 200 to a statement.
  t.deepEqual(store.statements, ["one", "many(200)", "many(49)"]);
  const stored = await store.range(base.conversationId, 0, Infinity, 1_000, "oldest");
  t.deepEqual(
    stored.map((m) => [m.seq, m.body]),
    bodies.map((body, i) => [i + 1, body]),
  );
});

test("a client_msg_id repeated inside a batch: the batch falls back to one by one, the repeat gets the original, nothing is stored twice", async (t) => {
  const store = new CountingStore(t.context.database.db, t.context.database.prepared);
  const batcher = new AppendBatcher(store);
  const base = await freshDirect(t, "repeat");
  const send = (body: string, clientMsgId: string) => batcher.append({ ...base, body, clientMsgId });
  const results = await Promise.all([
    send("first", "x1"),
    send("second", "x2"),
    send("third", "x3"),
    send("second again", "x2"),
    send("fourth", "x4"),
  ]);
  t.deepEqual(
    results.map((r) => [r?.record.seq, r?.record.body, r?.duplicate]),
    [
      [1, "first", false],
      [2, "second", false],
      [3, "third", false],
      [2, "second", true],
      [4, "fourth", false],
    ],
  );
  t.deepEqual(store.statements, ["one", "many(4)", "one", "one", "one", "one"]);
  const stored = await store.range(base.conversationId, 0, Infinity, 1_000, "oldest");
  t.deepEqual(
    stored.map((m) => m.clientMsgId),
    ["x1", "x2", "x3", "x4"],
  );
});

test("a retry of an id stored by an earlier batch gets the original, and the rest of its batch commits in order", async (t) => {
  const store = new CountingStore(t.context.database.db, t.context.database.prepared);
  const batcher = new AppendBatcher(store);
  const base = await freshDirect(t, "retry");
  const original = await batcher.append({ ...base, body: "original", clientMsgId: "r1" });
  const results = await Promise.all(
    [
      ["new 1", "r2"],
      ["new 2", "r3"],
      ["original, retried with another body", "r1"],
      ["new 3", "r4"],
    ].map(([body, clientMsgId]) => batcher.append({ ...base, body, clientMsgId })),
  );
  t.deepEqual(
    results.map((r) => [r?.record.seq, r?.record.body, r?.duplicate]),
    [
      [2, "new 1", false],
      [3, "new 2", false],
      [1, "original", true],
      [4, "new 3", false],
    ],
  );
  t.deepEqual(results[2]?.record, original?.record);
  // The retry left its batch without failing it: the rest committed together, the retry alone.
  t.deepEqual(store.statements, ["one", "many(4)", "one"]);
});

test("sends of different senders to different conversations share a statement, and each conversation keeps its own order", async (t) => {
  const store = new CountingStore(t.context.database.db, t.context.database.prepared);
  const batcher = new AppendBatcher(store);
  const pairs = [];
  for (let i = 0; i < 8; i++) pairs.push(await freshDirect(t, `share${i}`));
  const results = await Promise.all(pairs.map((pair, i) => appendAtOnce(batcher, pair, ["a", "b", "c"], `share${i}`)));
  for (const result of results) t.deepEqual(result.map(seqOf), [1, 2, 3]);
  // 24 messages: each lane's first goes alone (at most 4), the rest queue behind it together.
  t.true(store.statements.length <= 8, store.statements.join(" "));
  t.true(
    store.statements.some((s) => /^many\((\d+)\)$/.test(s) && Number(s.slice(5, -1)) > 2),
    `a statement took messages of several conversations: ${store.statements.join(" ")}`,
  );
  for (const pair of pairs) {
    const stored = await store.range(pair.conversationId, 0, Infinity, 10, "oldest");
    t.deepEqual(
      stored.map((m) => [m.seq, m.body, m.sender]),
      [
        [1, "a", pair.sender],
        [2, "b", pair.sender],
        [3, "c", pair.sender],
      ],
    );
  }
});

test("a message to a group its sender is not in is refused alone; the messages sent with it commit", async (t) => {
  const store = new CountingStore(t.context.database.db, t.context.database.prepared);
  const batcher = new AppendBatcher(store);
  const pair = await freshDirect(t, "mixed");
  const group = { ...pair, conversationId: "group:nosuch", toKind: "group" as const, toName: "nosuch" };
  const results = await Promise.all([
    batcher.append({ ...pair, body: "one", clientMsgId: "mx1" }),
    batcher.append({ ...pair, body: "two", clientMsgId: "mx2" }),
    batcher.append({ ...group, body: "not a member", clientMsgId: "mx3" }),
    batcher.append({ ...pair, body: "three", clientMsgId: "mx4" }),
  ]);
  t.deepEqual(
    results.map((r) => r && [r.record.seq, r.record.body]),
    [[1, "one"], [2, "two"], undefined, [3, "three"]],
  );
  const stored = await store.range(pair.conversationId, 0, Infinity, 10, "oldest");
  t.deepEqual(
    stored.map((m) => m.body),
    ["one", "two", "three"],
  );
});
