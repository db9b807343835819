// Idempotent sends (design.md, delivery guarantee 3) as a client sees them: a
// retried client_msg_id returns the original message and never makes a
// duplicate, whatever changed since (the rate limit, the sender's membership,
// the body, the target), and a retry costs no rate-limit point. Every case
// runs on unary Send and on Connect send frames, against Postgres and against
// the embedded PGlite, with RATE_LIMIT_BURST=3 and RATE_LIMIT_PER_SECOND=1.
import { status } from "@grpc/grpc-js";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import type { Message, ServerFrame, Target } from "../gen/parley/chat/v1/chat.js";
import { newUser, uniqueName, type TestUser } from "./helpers/clients.js";
import { fullHistory } from "./helpers/history.js";
import { freshDatabase, scratchDir } from "./helpers/infra.js";
import { RawStream } from "./helpers/raw-stream.js";
import { startedTogether, startServer, type InProcessServer } from "./helpers/servers.js";

type Backend = "postgres" | "pglite";
type Way = "Send" | "Connect";
// Serial: the rate-limit cases count on a second's budget, which a crowd of concurrent tests would stretch.
const test = anyTest.serial as TestFn<Record<Backend, InProcessServer>>;

const LIMITED = { RATE_LIMIT_BURST: "3", RATE_LIMIT_PER_SECOND: "1", REDIS_URL: undefined };

test.before(async (t) => {
  const [postgres, pglite] = await startedTogether(
    [
      startServer({ ...LIMITED, DATABASE_URL: await freshDatabase() }),
      startServer({ ...LIMITED, DATABASE_URL: undefined, PARLEY_DATA_DIR: scratchDir("idempotency") }),
    ],
    (server) => server.shutdown(),
  );
  Object.assign(t.context, { postgres, pglite });
});
test.after.always(async (t) => {
  await Promise.all([t.context.postgres?.shutdown(), t.context.pglite?.shutdown()]);
});

/** A refused send, as either way reports it. */
interface Refusal {
  code: number;
  details: string;
}

/** One user's sends, one at a time, through unary Send or through one Connect stream. */
interface Sender {
  user: TestUser;
  send(to: Target, body: string, clientMsgId: string): Promise<Message>;
}

async function sender(t: ExecutionContext<Record<Backend, InProcessServer>>, address: string, way: Way): Promise<Sender> {
  const user = await newUser(address, "idem");
  if (way === "Send") return { user, send: (to, body, id) => user.api.send(to, body, id) };
  const stream = RawStream.connect(address, user.token).hello();
  t.teardown(() => stream.close());
  await stream.until(() => stream.caughtUp, `${user.username} caught up`);
  return {
    user,
    async send(to, body, id) {
      const from = stream.frames.length;
      let answer: ServerFrame | undefined;
      stream.send(to, body, id);
      await stream.until(
        () => {
          answer = stream.frames.slice(from).find((f) => f.sent?.clientMsgId === id || f.sendFailed?.clientMsgId === id);
          return answer !== undefined;
        },
        `the answer to ${id}`,
        10_000,
      );
      if (answer?.sent?.message) return answer.sent.message;
      throw { code: answer?.sendFailed?.code, details: answer?.sendFailed?.reason } satisfies Partial<Refusal>;
    },
  };
}

/** How a send was refused, or undefined when it was not. */
async function refusal(promise: Promise<unknown>): Promise<Refusal | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    const { code, details } = err as Refusal;
    return { code, details };
  }
}

const same = (m: Message) => ({ id: m.id, conversationId: m.conversationId, seq: m.seq, body: m.body, sender: m.sender, clientMsgId: m.clientMsgId });

const cases = (backend: Backend, way: Way) => `${backend}, ${way}`;

for (const backend of ["postgres", "pglite"] as const) {
  for (const way of ["Send", "Connect"] as const) {
    test(`a retry after the rate limit is spent returns the original, again and again (${cases(backend, way)})`, async (t) => {
      const { address } = t.context[backend];
      const [ana, ben] = await Promise.all([sender(t, address, way), newUser(address, "idem")]);
      const toBen: Target = { username: ben.username };
      const started = Date.now();
      const sent = [await ana.send(toBen, "one", "k-1"), await ana.send(toBen, "two", "k-2"), await ana.send(toBen, "three", "k-3")];
      t.deepEqual(
        sent.map((m) => m.seq),
        [1, 2, 3],
      );

      for (let i = 0; i < 3; i++) t.deepEqual(same(await ana.send(toBen, "one", "k-1")), same(sent[0]), `retry ${i + 1} of k-1`);
      t.deepEqual(same(await ana.send(toBen, "two, edited", "k-2")), same(sent[1]));
      const fresh = await refusal(ana.send(toBen, "four", "k-4"));
      if (Date.now() - started < 1000) t.is(fresh?.code, status.RESOURCE_EXHAUSTED, "a new message is still limited");

      const history = await fullHistory(ben.api, sent[0].conversationId);
      t.deepEqual(history.slice(0, 3).map(same), sent.map(same));
      t.true(history.length <= 4);
    });

    test(`a retry takes no rate-limit point (${cases(backend, way)})`, async (t) => {
      const { address } = t.context[backend];
      const [ana, ben] = await Promise.all([sender(t, address, way), newUser(address, "idem")]);
      const toBen: Target = { username: ben.username };
      const started = Date.now();
      const first = await ana.send(toBen, "first", "p-1");
      for (let i = 0; i < 4; i++) t.is((await ana.send(toBen, "first", "p-1")).id, first.id);
      // The burst is 3: the two retried sends would have spent what is left of it.
      t.is((await ana.send(toBen, "second", "p-2")).seq, 2);
      t.is((await ana.send(toBen, "third", "p-3")).seq, 3);
      const fourth = await refusal(ana.send(toBen, "fourth", "p-4"));
      if (Date.now() - started < 1000) t.is(fourth?.code, status.RESOURCE_EXHAUSTED, "the burst is spent by new messages only");
    });

    test(`a retry after leaving the group returns the original (${cases(backend, way)})`, async (t) => {
      const { address } = t.context[backend];
      const ana = await sender(t, address, way);
      const devs = uniqueName("devs");
      await ana.user.api.createGroup(devs);
      const original = await ana.send({ group: devs }, "standup at 10", "k-9");
      t.is(original.seq, 1);
      await ana.user.api.leaveGroup(devs);

      t.deepEqual(same(await ana.send({ group: devs }, "standup at 10", "k-9")), same(original));
      t.deepEqual(same(await ana.send({ group: devs.toUpperCase() }, "standup at 10", "k-9")), same(original));
      t.deepEqual(same(await ana.send({ group: devs }, "", "k-9")), same(original));
      t.is((await refusal(ana.send({ group: devs }, "a new one", "k-10")))?.code, status.PERMISSION_DENIED);
    });

    test(`a retry whose body changed returns the original: other text, empty, over 4096 bytes, U+0000 (${cases(backend, way)})`, async (t) => {
      const { address } = t.context[backend];
      const [ana, ben] = await Promise.all([sender(t, address, way), newUser(address, "idem")]);
      const toBen: Target = { username: ben.username };
      const original = await ana.send(toBen, "hello", "b-1");
      for (const body of ["hello again", "", "   ", "é".repeat(2049), "x".repeat(4097), "a\u0000b"]) {
        t.deepEqual(same(await ana.send(toBen, body, "b-1")), same(original), `body of ${body.length} characters`);
      }
      t.deepEqual((await fullHistory(ben.api, original.conversationId)).map(same), [same(original)]);
      // A new id with such a body is still refused.
      t.is((await refusal(ana.send(toBen, "a\u0000b", "b-2")))?.code, status.INVALID_ARGUMENT);
    });

    test(`a retry to another target returns the original and leaves nothing behind (${cases(backend, way)})`, async (t) => {
      const { address } = t.context[backend];
      const [ana, ben, dave] = await Promise.all([sender(t, address, way), newUser(address, "idem"), newUser(address, "idem")]);
      const team = uniqueName("team");
      await ana.user.api.createGroup(team);
      const original = await ana.send({ username: ben.username }, "hi ben", "t-1");
      const retries: [string, Target][] = [
        ["the name spelled in capitals", { username: ben.username.toUpperCase() }],
        ["another user", { username: dave.username }],
        ["a user that does not exist", { username: uniqueName("nobody") }],
        ["a group", { group: team }],
        ["a group that does not exist", { group: uniqueName("nogroup") }],
        ["broadcast", { broadcast: true }],
        ["no target", {}],
      ];
      for (const [what, to] of retries) t.deepEqual(same(await ana.send(to, "hi ben", "t-1")), same(original), what);

      t.deepEqual((await fullHistory(ben.api, original.conversationId)).map(same), [same(original)]);
      t.deepEqual(
        (await dave.api.listConversations()).filter((c) => c.id.startsWith("dm:")),
        [],
        "no DM with dave",
      );
      const group = (await ana.user.api.listConversations()).find((c) => c.title === team);
      t.is(group?.lastSeq, 0, "nothing in the group");
    });
  }
}

test("a retry through Connect of a message sent with Send, and the other way round, returns the original", async (t) => {
  const { address } = t.context.postgres;
  const [unary, ben] = await Promise.all([sender(t, address, "Send"), newUser(address, "idem")]);
  const stream = await sender(t, address, "Connect");
  // The same user on both ways: a Connect stream opened with the unary sender's token.
  const both = RawStream.connect(address, unary.user.token).hello();
  t.teardown(() => both.close());
  await both.until(() => both.caughtUp, "caught up");
  const original = await unary.send({ username: ben.username }, "sent by Send", "x-1");
  both.send({ username: ben.username }, "retried on Connect", "x-1");
  await both.until(() => both.acks().some((m) => m.clientMsgId === "x-1"), "the ack of x-1");
  t.deepEqual(same(both.acks()[0]), same(original));

  const streamed = await stream.send({ username: ben.username }, "sent on Connect", "y-1");
  const retried = await stream.user.api.send({ broadcast: true }, "", "y-1");
  t.deepEqual(same(retried), same(streamed));
});
