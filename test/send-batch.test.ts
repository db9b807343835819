// Group commit as a client sees it: send frames written at once on one Connect
// commit together, and a frame that is refused (by the domain or by the
// store) fails alone. Every other frame is acknowledged, in frame order, with
// consecutive seqs, stored once and delivered once. On Postgres and PGlite.
import { status } from "@grpc/grpc-js";
import anyTest, { type TestFn } from "ava";
import type { Target } from "../gen/parley/chat/v1/chat.js";
import { newUser } from "./helpers/clients.js";
import { fullHistory, range } from "./helpers/history.js";
import { freshDatabase, scratchDir } from "./helpers/infra.js";
import { RawStream } from "./helpers/raw-stream.js";
import { NO_RATE_LIMIT, startedTogether, startServer, type InProcessServer } from "./helpers/servers.js";

type Backend = "postgres" | "pglite";
const test = anyTest as TestFn<Record<Backend, InProcessServer>>;

test.before(async (t) => {
  const [postgres, pglite] = await startedTogether(
    [
      startServer({ ...NO_RATE_LIMIT, REDIS_URL: undefined, DATABASE_URL: await freshDatabase() }),
      startServer({ ...NO_RATE_LIMIT, REDIS_URL: undefined, DATABASE_URL: undefined, PARLEY_DATA_DIR: scratchDir("send-batch") }),
    ],
    (server) => server.shutdown(),
  );
  Object.assign(t.context, { postgres, pglite });
});
test.after.always(async (t) => {
  await Promise.all([t.context.postgres?.shutdown(), t.context.pglite?.shutdown()]);
});

for (const backend of ["postgres", "pglite"] as const) {
  test(`21 send frames at once with bad ones among them: each bad one fails alone, the rest commit in order (${backend})`, async (t) => {
    const { address } = t.context[backend];
    const [ana, ben] = await Promise.all([newUser(address, "batch"), newUser(address, "batch")]);
    const toBen: Target = { username: ben.username };
    const benStream = RawStream.connect(address, ben.token).hello();
    const stream = RawStream.connect(address, ana.token).hello();
    t.teardown(() => {
      stream.close();
      benStream.close();
    });
    await Promise.all([stream.until(() => stream.caughtUp, "ana caught up"), benStream.until(() => benStream.caughtUp, "ben caught up")]);

    const frames = range(0, 20).map((i) => ({ id: `f-${i}`, body: `frame ${i}` }));
    frames[7].body = ""; // refused by the domain
    frames[13].body = "a\u0000b"; // text Postgres cannot store
    frames[17] = { id: "f-3", body: "frame 3, retried with another body" }; // a retry inside the batch
    for (const f of frames) stream.send(toBen, f.body, f.id);
    await stream.until(() => stream.frames.filter((f) => f.sent || f.sendFailed).length === 21, "21 answers");

    const answers = stream.frames.filter((f) => f.sent || f.sendFailed);
    const failed = answers.flatMap((f) => (f.sendFailed ? [[f.sendFailed.clientMsgId, f.sendFailed.code]] : []));
    t.deepEqual(failed, [
      ["f-7", status.INVALID_ARGUMENT],
      ["f-13", status.INVALID_ARGUMENT],
    ]);
    const acks = stream.acks();
    const fresh = frames.filter((_, i) => ![7, 13, 17].includes(i));
    // Answers come in frame order; the retry is answered with the original.
    t.deepEqual(
      acks.map((m) => m.clientMsgId),
      frames.filter((_, i) => ![7, 13].includes(i)).map((f) => f.id),
    );
    const originals = acks.filter((_, i) => i !== acks.findIndex((m, j) => j > 3 && m.clientMsgId === "f-3"));
    t.deepEqual(
      originals.map((m) => m.seq),
      range(1, fresh.length),
      "consecutive seqs from 1",
    );
    t.deepEqual(
      originals.map((m) => m.body),
      fresh.map((f) => f.body),
    );
    t.is(acks.filter((m) => m.clientMsgId === "f-3").length, 2);
    t.is(new Set(acks.filter((m) => m.clientMsgId === "f-3").map((m) => m.id)).size, 1);

    const history = await fullHistory(ben.api, originals[0].conversationId);
    t.deepEqual(
      history.map((m) => [m.seq, m.clientMsgId]),
      originals.map((m) => [m.seq, m.clientMsgId]),
    );
    await benStream.until(() => benStream.messages().length >= fresh.length, "ben got every message");
    t.deepEqual(
      benStream.messages().map((m) => m.seq),
      range(1, fresh.length),
      "each delivered once, in order",
    );
  });
}
