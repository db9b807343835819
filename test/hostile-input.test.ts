// Hostile input, property-based (design.md "Input rules that hold for every
// field of every rpc and frame"): every rpc of auth, chat and the scaler, and
// every Connect frame, gets hostile strings (U+0000, lone surrogates, 64 KiB,
// long runs of multi-byte characters, right-to-left marks, emoji) and hostile
// numbers (negative, beyond 2^53, int64 limits). Every answer is a status from
// the error table with a message of at most 256 characters, never INTERNAL;
// the same connection keeps serving; valid sends around a hostile frame are
// all acknowledged in order; and the server logs no error-level line.
import { randomUUID } from "node:crypto";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Client, credentials, Metadata, status, type ClientDuplexStream } from "@grpc/grpc-js";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import fc from "fast-check";
import { pino } from "pino";
import { GetMetricsRequest, ScaledObjectRef } from "../gen/externalscaler/externalscaler.js";
import { LogInRequest, SignUpRequest } from "../gen/parley/auth/v1/auth.js";
import {
  ClientFrame,
  CreateGroupRequest,
  Cursor,
  GetHistoryRequest,
  JoinGroupRequest,
  LeaveGroupRequest,
  ListGroupsRequest,
  MarkReadRequest,
  Read,
  SendRequest,
  SendResponse,
  ServerFrame,
  type Target,
} from "../gen/parley/chat/v1/chat.js";
import { bearer } from "../services/client/api.js";
import { newUser, uniqueName, type TestUser } from "./helpers/clients.js";
import { freshDatabase } from "./helpers/infra.js";
import { RawStream } from "./helpers/raw-stream.js";
import { NO_RATE_LIMIT, startServer, type InProcessServer } from "./helpers/servers.js";

interface Context {
  server: InProcessServer;
  /** Every line the server logged at error level or above. */
  errors: string[];
  /** One channel for every call: a hostile call must not stall the ones after it. */
  client: Client;
  user: TestUser;
  peer: TestUser;
  /** A group of `user`'s that no hostile input names: valid sends go there. */
  group: { name: string; conversationId: string };
  dm: string;
}
const test = anyTest as TestFn<Context>;

const RUNS = 40;
const CALL_MS = 15_000;
/** The error table's codes (design.md, "Errors everywhere"), and OK. */
const TABLE = new Set([
  status.OK,
  status.UNAUTHENTICATED,
  status.NOT_FOUND,
  status.PERMISSION_DENIED,
  status.INVALID_ARGUMENT,
  status.ALREADY_EXISTS,
  status.RESOURCE_EXHAUSTED,
  status.UNAVAILABLE,
]);

test.before(async (t) => {
  const errors: string[] = [];
  const log = pino(
    { level: "info" },
    {
      write(line: string) {
        if ((JSON.parse(line) as { level: number }).level >= 50) errors.push(line);
      },
    },
  );
  t.context.errors = errors;
  t.context.server = await startServer({ DATABASE_URL: await freshDatabase(), ...NO_RATE_LIMIT }, { log });
  const { address } = t.context.server;
  t.context.client = new Client(address, credentials.createInsecure());
  const [user, peer] = await Promise.all([newUser(address), newUser(address)]);
  Object.assign(t.context, { user, peer });
  const group = await user.api.createGroup(uniqueName("hostile"));
  t.context.group = { name: group.name, conversationId: group.conversationId };
  t.context.dm = (await user.api.send({ username: peer.username }, "hello", randomUUID())).conversationId;
});

test.after("the server logged no error-level line", (t) => {
  t.deepEqual(t.context.errors, []);
});

test.after.always(async (t) => {
  t.context.client?.close();
  t.context.user?.api.close();
  t.context.peer?.api.close();
  await t.context.server?.shutdown();
});

// ---- hostile values -------------------------------------------------------

const LONE = ["\ud800", "\udfff", "a\ud83d", "\ude00b"];
const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("", "\u0000", "a\u0000b", "ana\u0000", ...LONE, "\u202Eevil\u202C", "\u200F\u200E", "😀", "👩‍👩‍👧", "é"),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: fc.constantFrom("é", "😀", "\u202E", "\u0000", "x", "\ud800", "€", "\u200F"), maxLength: 80 }),
  // Long runs: from a few hundred characters to past the 64 KiB a request may have.
  fc.tuple(fc.constantFrom("x", "é", "😀", "\u202E", "\u0000", "€"), fc.constantFrom(65, 300, 2000, 15_000, 40_000)).map(([c, n]) => c.repeat(n)),
  fc.constant("a".repeat(70_000)),
);
/** Strings that keep a frame under the 64 KiB receive limit (a larger one ends the stream: see below). */
const frameString = hostileString.filter((s) => Buffer.byteLength(s) < 40_000);
const INT64 = [0n, -1n, 1n, 2n ** 31n, -(2n ** 31n), 2n ** 53n - 1n, 2n ** 53n, -(2n ** 53n), 2n ** 63n - 1n, -(2n ** 63n)];
const hostileNumber: fc.Arbitrary<bigint> = fc.oneof(fc.constantFrom(...INT64), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
const hostileTarget = (text: fc.Arbitrary<string>): fc.Arbitrary<Target | undefined> =>
  fc.oneof(
    text.map((username) => ({ username })),
    text.map((group) => ({ group })),
    fc.boolean().map((broadcast) => ({ broadcast })),
    fc.constant(undefined),
    fc.constant({}),
  );

// ---- the wire -------------------------------------------------------------

/** A varint field, written after the rest of a message: the last value of a field wins, so this sets it to any int64. */
const int64Field = (field: number, value: bigint) =>
  new BinaryWriter()
    .uint32(field << 3)
    .int64(value)
    .finish();
const messageField = (field: number, bytes: Uint8Array) =>
  new BinaryWriter()
    .uint32((field << 3) | 2)
    .bytes(bytes)
    .finish();
const cat = (...parts: Uint8Array[]) => Buffer.concat(parts);

interface Answer {
  code: number;
  details: string;
  response?: Buffer;
}

function call(t: ExecutionContext<Context>, path: string, request: Uint8Array, token: string | undefined = t.context.user.token): Promise<Answer> {
  const metadata = token === undefined ? new Metadata() : bearer(token);
  return new Promise((resolve) =>
    t.context.client.makeUnaryRequest(
      path,
      (b: Uint8Array) => Buffer.from(b),
      (b: Buffer) => b,
      request,
      metadata,
      { deadline: Date.now() + CALL_MS },
      (err, response) => resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: "", response }),
    ),
  );
}

/** The answer is in the table, short, and the same channel still answers another call at once. */
async function judge(t: ExecutionContext<Context>, label: string, answer: Answer): Promise<boolean> {
  const ok =
    TABLE.has(answer.code) &&
    [...answer.details].length <= 256 &&
    (await call(t, "/parley.auth.v1.AuthService/WhoAmI", new Uint8Array())).code === status.OK;
  if (!ok) throw new Error(`${label}: ${status[answer.code]} (${[...answer.details].length} characters) ${answer.details.slice(0, 200)}`);
  return ok;
}

/** `fc.assert` with this file's run count; a failure shows the shrunk counterexample. */
async function holds<T>(t: ExecutionContext<Context>, arbitrary: fc.Arbitrary<T>, property: (value: T) => Promise<boolean>) {
  // FC_SEED=<seed> replays a failing run (fast-check prints the seed with the counterexample).
  const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
  await fc.assert(fc.asyncProperty(arbitrary, property), { numRuns: RUNS, endOnFailure: true, seed });
  t.pass();
}

const AUTH = "/parley.auth.v1.AuthService/";
const CHAT = "/parley.chat.v1.ChatService/";
const SCALER = "/externalscaler.ExternalScaler/";

// ---- properties -----------------------------------------------------------

test("AuthService: SignUp, LogIn, LogOut and WhoAmI answer hostile input from the error table", async (t) => {
  const printable = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 });
  await holds(t, fc.record({ username: hostileString, password: hostileString, token: printable }), async ({ username, password, token }) => {
    const signUp = await call(t, `${AUTH}SignUp`, SignUpRequest.encode({ username, password }).finish(), undefined);
    const logIn = await call(t, `${AUTH}LogIn`, LogInRequest.encode({ username, password }).finish(), undefined);
    const whoAmI = await call(t, `${AUTH}WhoAmI`, new Uint8Array(), token);
    const logOut = await call(t, `${AUTH}LogOut`, new Uint8Array(), token);
    return (
      (await judge(t, "SignUp", signUp)) &&
      (await judge(t, "LogIn", logIn)) &&
      (await judge(t, "WhoAmI", whoAmI)) &&
      (await judge(t, "LogOut", logOut))
    );
  });
});

test("ChatService unary rpcs answer hostile strings and numbers from the error table", async (t) => {
  const ids = fc.oneof(hostileString, fc.constantFrom("broadcast", t.context.dm, t.context.group.conversationId));
  const input = fc.record({
    text: hostileString,
    id: ids,
    clientMsgId: hostileString,
    to: hostileTarget(hostileString),
    a: hostileNumber,
    b: hostileNumber,
  });
  /** Bodies stored so far by client_msg_id: a retried id (fast-check repeats values) returns the original, whatever the body now. */
  const stored = new Map<string, string>();
  await holds(t, input, async ({ text, id, clientMsgId, to, a, b }) => {
    const calls: [string, Uint8Array][] = [
      ["Send", SendRequest.encode({ clientMsgId, to, body: text }).finish()],
      ["GetHistory", cat(GetHistoryRequest.encode({ conversationId: id, beforeSeq: 0, limit: 0 }).finish(), int64Field(2, a), int64Field(3, b))],
      ["MarkRead", cat(MarkReadRequest.encode({ conversationId: id, seq: 0 }).finish(), int64Field(2, a))],
      ["CreateGroup", CreateGroupRequest.encode({ name: text }).finish()],
      ["JoinGroup", JoinGroupRequest.encode({ name: text }).finish()],
      ["LeaveGroup", LeaveGroupRequest.encode({ name: text }).finish()],
      ["ListGroups", ListGroupsRequest.encode({ query: text, mine: a % 2n === 0n }).finish()],
      ["ListConversations", new Uint8Array()],
      ["ListOnlineUsers", new Uint8Array()],
    ];
    for (const [rpc, request] of calls) {
      const answer = await call(t, `${CHAT}${rpc}`, request);
      if (!(await judge(t, `${rpc}(${JSON.stringify(text.slice(0, 20))}, ${a}, ${b})`, answer))) return false;
      if (rpc === "Send" && answer.code === status.OK) {
        // Accepted text round-trips exactly, as the client's encoder wrote it (lone surrogates become U+FFFD).
        const message = SendResponse.decode(answer.response ?? Buffer.alloc(0)).message;
        const sent = new TextDecoder().decode(new TextEncoder().encode(text));
        const expected = stored.get(message?.clientMsgId ?? "") ?? sent;
        if (message?.body !== expected) throw new Error(`Send stored ${JSON.stringify(message?.body)}, expected ${JSON.stringify(expected)}`);
        stored.set(message.clientMsgId, message.body);
      }
    }
    return true;
  });
});

test("Subscribe with hostile cursors opens, or ends with a status from the table", async (t) => {
  const cursors = fc.array(fc.record({ conversationId: hostileString.filter((s) => s.length < 20_000), seq: hostileNumber }), { maxLength: 3 });
  await holds(t, cursors, async (list) => {
    const body = cat(
      ...list.map((c) => messageField(1, cat(Cursor.encode({ conversationId: c.conversationId, seq: 0 }).finish(), int64Field(2, c.seq)))),
    );
    const stream = t.context.client.makeServerStreamRequest(
      `${CHAT}Subscribe`,
      (b: Buffer) => b,
      (b: Buffer) => ServerFrame.decode(b),
      body,
      bearer(t.context.user.token),
    );
    const answer = await new Promise<Answer>((resolve) => {
      stream.on("error", () => undefined);
      stream.on("data", (f: ServerFrame) => f.caughtUp && resolve({ code: status.OK, details: "" }));
      stream.on("status", (s: { code: number; details: string }) => resolve(s));
      setTimeout(() => resolve({ code: status.DEADLINE_EXCEEDED, details: "no caught_up and no status" }), CALL_MS);
    });
    stream.cancel();
    return judge(t, `Subscribe ${list.map((c) => `${JSON.stringify(c.conversationId.slice(0, 20))}@${c.seq}`).join(", ")}`, answer);
  });
});

test("ExternalScaler: every rpc answers hostile names, namespaces, metadata and metric names from the table", async (t) => {
  const metadata = fc.dictionary(
    hostileString.filter((s) => s.length < 1000),
    hostileString,
    { maxKeys: 3 },
  );
  const input = fc.record({
    name: hostileString,
    namespace: hostileString,
    metadata,
    perReplica: fc.option(hostileString),
    metricName: hostileString,
  });
  await holds(t, input, async ({ name, namespace, metadata: extra, perReplica, metricName }) => {
    const scalerMetadata = perReplica === null ? extra : { ...extra, usersPerReplica: perReplica };
    const ref = ScaledObjectRef.encode({ name, namespace, scalerMetadata }).finish();
    for (const rpc of ["IsActive", "GetMetricSpec"]) {
      if (!(await judge(t, rpc, await call(t, `${SCALER}${rpc}`, ref, undefined)))) return false;
    }
    const metrics = GetMetricsRequest.encode({ scaledObjectRef: { name, namespace, scalerMetadata }, metricName }).finish();
    if (!(await judge(t, `GetMetrics ${JSON.stringify(metricName.slice(0, 20))}`, await call(t, `${SCALER}GetMetrics`, metrics, undefined))))
      return false;
    const stream = t.context.client.makeServerStreamRequest(
      `${SCALER}StreamIsActive`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(ref),
      new Metadata(),
    );
    const answer = await new Promise<Answer>((resolve) => {
      stream.on("error", () => undefined);
      stream.on("data", () => resolve({ code: status.OK, details: "" }));
      stream.on("status", (s: { code: number; details: string }) => resolve(s));
      setTimeout(() => resolve({ code: status.DEADLINE_EXCEEDED, details: "no answer" }), CALL_MS);
    });
    stream.cancel();
    return judge(t, "StreamIsActive", answer);
  });
});

test("malformed bytes on every unary rpc answer from the table and the channel keeps serving", async (t) => {
  const rpcs = [
    `${AUTH}SignUp`,
    `${AUTH}LogIn`,
    `${CHAT}Send`,
    `${CHAT}GetHistory`,
    `${CHAT}MarkRead`,
    `${CHAT}CreateGroup`,
    `${CHAT}ListGroups`,
    `${SCALER}GetMetrics`,
    `${SCALER}IsActive`,
  ];
  await holds(t, fc.tuple(fc.constantFrom(...rpcs), fc.uint8Array({ maxLength: 300 })), async ([path, bytes]) =>
    judge(t, `${path} ${Buffer.from(bytes).toString("hex").slice(0, 40)}`, await call(t, path, bytes)),
  );
});

// ---- Connect ----------------------------------------------------------------

/** A hostile frame, as bytes: every field of every client frame, and bytes that are no frame at all. */
const hostileFrame: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.record({ clientMsgId: frameString, to: hostileTarget(frameString), body: frameString }).map((send) => ClientFrame.encode({ send }).finish()),
  fc
    .record({ conversationId: frameString, seq: hostileNumber })
    .map(({ conversationId, seq }) => messageField(3, cat(Read.encode({ conversationId, seq: 0 }).finish(), int64Field(2, seq)))),
  hostileTarget(frameString).map((to) => ClientFrame.encode({ typing: { to } }).finish()),
  frameString.map((nonce) => ClientFrame.encode({ ping: { nonce } }).finish()),
  fc
    .array(fc.record({ conversationId: frameString, seq: hostileNumber }), { maxLength: 3 })
    .map((cursors) =>
      messageField(
        1,
        cat(...cursors.map((c) => messageField(1, cat(Cursor.encode({ conversationId: c.conversationId, seq: 0 }).finish(), int64Field(2, c.seq))))),
      ),
    ),
  fc.uint8Array({ maxLength: 200 }),
);

/** A Connect stream whose frames are written as bytes. */
function openBytesStream(t: ExecutionContext<Context>): RawStream<ClientDuplexStream<Uint8Array, ServerFrame>> {
  const call = t.context.client.makeBidiStreamRequest(
    `${CHAT}Connect`,
    (b: Uint8Array) => Buffer.from(b),
    (b: Buffer) => ServerFrame.decode(b),
    bearer(t.context.user.token),
  );
  return new RawStream(call);
}

test("Connect: valid sends around a hostile frame are all acknowledged with consecutive seqs, and the stream stays open", async (t) => {
  const stream = openBytesStream(t);
  t.teardown(() => stream.call.cancel());
  stream.call.write(ClientFrame.encode({ hello: { cursors: [], acceptBatch: false } }).finish());
  await stream.until(() => stream.caughtUp, "caught_up", CALL_MS);
  const target = { group: t.context.group.name };
  await holds(t, hostileFrame, async (hostile) => {
    const ids = Array.from({ length: 6 }, () => randomUUID());
    const send = (id: string) => stream.call.write(ClientFrame.encode({ send: { clientMsgId: id, to: target, body: `valid ${id}` } }).finish());
    ids.slice(0, 3).forEach(send);
    const frameCount = stream.frames.length;
    stream.call.write(hostile);
    ids.slice(3).forEach(send);
    const nonce = randomUUID();
    stream.call.write(ClientFrame.encode({ ping: { nonce } }).finish());
    const answered = (id: string) => stream.frames.find((f) => f.sent?.clientMsgId === id || f.sendFailed?.clientMsgId === id);
    await stream.until(
      () => stream.status !== undefined || (ids.every(answered) && stream.frames.some((f) => f.pong?.nonce === nonce)),
      "answers and pong",
      CALL_MS,
    );
    const acks = ids.map((id) => answered(id)?.sent?.message);
    const seqs = acks.map((m) => m?.seq ?? 0);
    const failures = stream.frames.slice(frameCount).flatMap((f) => (f.sendFailed ? [f.sendFailed] : []));
    const ok =
      stream.status === undefined &&
      acks.every((m) => m?.conversationId === t.context.group.conversationId) &&
      seqs.every((seq, i) => i === 0 || seq === seqs[i - 1] + 1) &&
      failures.every((f) => TABLE.has(f.code) && f.code !== status.OK && [...f.reason].length <= 256);
    if (!ok) t.log({ status: stream.status, seqs, failures: failures.map((f) => `${f.code} ${f.reason.slice(0, 80)}`) });
    return ok;
  });
  t.deepEqual(t.context.errors, []);
});

test("Connect: 21 sends written at once, one with U+0000 in its body: that one alone is refused (code 3), the other 20 get consecutive seqs", async (t) => {
  const stream = openBytesStream(t);
  t.teardown(() => stream.call.cancel());
  stream.call.write(ClientFrame.encode({ hello: { cursors: [], acceptBatch: false } }).finish());
  await stream.until(() => stream.caughtUp, "caught_up", CALL_MS);
  // A DM of its own: no other test of this file writes to it meanwhile.
  const peer = await newUser(t.context.server.address);
  t.teardown(() => peer.api.close());
  const ids = Array.from({ length: 21 }, (_, i) => `nul-${i}-${randomUUID()}`);
  for (const [i, id] of ids.entries()) {
    stream.call.write(
      ClientFrame.encode({ send: { clientMsgId: id, to: { username: peer.username }, body: i === 7 ? "a\u0000b" : `m${i}` } }).finish(),
    );
  }
  const answer = (id: string) => stream.frames.find((f) => f.sent?.clientMsgId === id || f.sendFailed?.clientMsgId === id);
  await stream.until(() => ids.every(answer), "21 answers", CALL_MS);
  const refused = answer(ids[7])?.sendFailed;
  t.is(refused?.code, status.INVALID_ARGUMENT);
  t.regex(refused?.reason ?? "", /body/);
  const seqs = ids.filter((_, i) => i !== 7).map((id) => answer(id)?.sent?.message?.seq ?? 0);
  t.deepEqual(
    seqs,
    seqs.map((_, i) => seqs[0] + i),
  );
  t.is(stream.status, undefined);
});

test("Connect: a frame past the 64 KiB receive limit ends that stream with RESOURCE_EXHAUSTED, and the channel keeps serving", async (t) => {
  const stream = openBytesStream(t);
  stream.call.write(ClientFrame.encode({ hello: { cursors: [], acceptBatch: false } }).finish());
  await stream.until(() => stream.caughtUp, "caught_up", CALL_MS);
  stream.call.write(ClientFrame.encode({ send: { clientMsgId: "big", to: { broadcast: true }, body: "é".repeat(40_000) } }).finish());
  const ended = await stream.done;
  t.true([status.RESOURCE_EXHAUSTED, status.INVALID_ARGUMENT].includes(ended.code), `${status[ended.code]}: ${ended.details}`);
  t.true(await judge(t, "after the big frame", await call(t, `${CHAT}ListOnlineUsers`, new Uint8Array())));
  const next = openBytesStream(t);
  t.teardown(() => next.call.cancel());
  next.call.write(ClientFrame.encode({ hello: { cursors: [], acceptBatch: false } }).finish());
  await next.until(() => next.caughtUp, "caught_up on a new stream", CALL_MS);
});

// ---- the examples of issue 8 ------------------------------------------------

test("U+0000 is refused with INVALID_ARGUMENT naming the field, and a refused DM leaves no conversation behind", async (t) => {
  const { address } = t.context.server;
  const bystander = await newUser(address);
  t.teardown(() => bystander.api.close());
  const cases: [string, Uint8Array, RegExp][] = [
    ["Send", SendRequest.encode({ clientMsgId: "n-1", to: { username: bystander.username }, body: "a\u0000b" }).finish(), /body/],
    ["LogIn", LogInRequest.encode({ username: "ana\u0000", password: "whatever1" }).finish(), /username/],
    ["GetHistory", GetHistoryRequest.encode({ conversationId: "x\u0000", beforeSeq: 0, limit: 0 }).finish(), /conversation_id/],
    ["MarkRead", MarkReadRequest.encode({ conversationId: "x\u0000", seq: 1 }).finish(), /conversation_id/],
    ["ListGroups", ListGroupsRequest.encode({ query: "\u0000", mine: false }).finish(), /query/],
  ];
  for (const [rpc, request, field] of cases) {
    const answer = await call(t, `${rpc === "LogIn" ? AUTH : CHAT}${rpc}`, request);
    t.is(answer.code, status.INVALID_ARGUMENT, `${rpc}: ${status[answer.code]} ${answer.details}`);
    t.regex(answer.details, field, rpc);
    t.regex(answer.details, /U\+0000/, rpc);
  }
  t.deepEqual(
    (await bystander.api.listConversations()).map((c) => c.id),
    ["broadcast"],
  );
});

test("status messages stay short whatever the input: 2000-character ids, 15 000 é as a metric name", async (t) => {
  const history = await call(t, `${CHAT}GetHistory`, GetHistoryRequest.encode({ conversationId: "x".repeat(2000), beforeSeq: 0, limit: 0 }).finish());
  t.is(history.code, status.NOT_FOUND);
  t.true(history.details.length <= 256 && !history.details.includes("x".repeat(64)), `${history.details.length} characters`);
  const started = Date.now();
  const metrics = await call(
    t,
    `${SCALER}GetMetrics`,
    GetMetricsRequest.encode({ scaledObjectRef: undefined, metricName: "é".repeat(15_000) }).finish(),
    undefined,
  );
  t.is(metrics.code, status.INVALID_ARGUMENT, metrics.details);
  t.true([...metrics.details].length <= 256, `${metrics.details.length} characters`);
  t.log(`GetMetrics with 15 000 é answered in ${Date.now() - started} ms: ${metrics.details}`);
  t.is((await call(t, `${CHAT}ListOnlineUsers`, new Uint8Array())).code, status.OK);
});

test("emoji, right-to-left marks and 4096 bytes of multi-byte text are accepted and round-trip exactly", async (t) => {
  const [user, peer] = await Promise.all([newUser(t.context.server.address), newUser(t.context.server.address)]);
  t.teardown(() => {
    for (const u of [user, peer]) u.api.close();
  });
  for (const body of ["😀👩‍👩‍👧🏳️‍🌈", "\u202Eabc\u202C \u200Fשלום\u200E", "é".repeat(2048), "😀".repeat(1024), `${"€".repeat(1365)}a`]) {
    const sent = await user.api.send({ username: peer.username }, body, randomUUID());
    t.is(sent.body, body);
    const history = await peer.api.getHistory(sent.conversationId);
    t.is(history.messages.at(-1)?.body, body);
  }
});
