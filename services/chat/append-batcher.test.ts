// The group commit on a real (embedded) Postgres: a message the store cannot
// keep fails alone, and the rest of its batch commits in order, with
// consecutive seqs. The domain refuses U+0000 before it gets here; this is the
// store's own line of defence, for any text a future check lets through.
import anyTest, { type TestFn } from "ava";
import { pino } from "pino";
import { scratchDir } from "../../test/helpers/infra.js";
import { openDatabase, type Database } from "../db/client.js";
import { users } from "../db/schema.js";
import { AppError } from "../lib/errors.js";
import { AppendBatcher, type AppendResult } from "./append-batcher.js";
import { BROADCAST_ID, directId } from "./conversation-ids.js";
import { MessageStore, type NewMessage } from "./message-store.js";

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
  return Promise.allSettled(bodies.map((body, i) => batcher.append({ ...base, body, clientMsgId: `${tag}-${i}` }, undefined)));
}

const seqOf = (r: PromiseSettledResult<AppendResult>) => (r.status === "fulfilled" ? r.value?.record.seq : undefined);

for (const kind of ["broadcast", "direct"] as const) {
  test(`a body the store cannot keep fails alone; its batch commits in order (${kind})`, async (t) => {
    const { store, ana, ben } = t.context;
    const batcher = new AppendBatcher(store);
    const base =
      kind === "broadcast"
        ? { conversationId: BROADCAST_ID, senderId: ana, sender: "ana", toKind: kind, toName: "" }
        : { conversationId: directId(ana, ben), senderId: ana, sender: "ana", toKind: kind, toName: "ben" };
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
    const refusedAll = await Promise.all(
      ["a", "b", "c"].map((body, i) => batcher.append({ ...group, body, clientMsgId: `${kind}-g-${i}` }, group.conversationId)),
    );
    t.deepEqual(refusedAll, [undefined, undefined, undefined]);
  });
}
