// The design's error table for ChatService, row by row, on unary calls and on
// the Connect stream, against real servers on real ports. A refused `send`
// frame must be answered with `send_failed` and leave the stream open.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Client, credentials, status } from "@grpc/grpc-js";
import type { ClientDuplexStream, ClientReadableStream, ServiceError, StatusObject } from "@grpc/grpc-js";
import type { ExecutionContext, SerialFn } from "ava";
import { ClientFrame, ConversationKind, ServerFrame } from "../../gen/parley/chat/v1/chat.js";
import type { SendRequest, SendResponse, Target } from "../../gen/parley/chat/v1/chat.js";
import { bearer, ParleyApi } from "../../services/client/api.js";
import type { Backend, Deployment, Sql, TestServer } from "../helpers/backends.js";
import { newUser, PASSWORD, uniqueName, type TestUser } from "../helpers/clients.js";
import { RawStream, type FinalStatus } from "../helpers/raw-stream.js";

const CHAT = "/parley.chat.v1.ChatService/";
const GARBAGE = [Buffer.from([0xff, 0xff, 0xff]), Buffer.from([0x12, 0x05, 0x01])];
/** How long a wait for a frame, or for the end of a stream, may take in this file. */
const WAIT_MS = 10_000;

/**
 * A Connect stream on a raw grpc-js client, so that a test can write any bytes
 * (not only ClientFrames) and see every frame; `take` hands out each frame once.
 */
class ByteStream extends RawStream<ClientDuplexStream<ClientFrame | Buffer, ServerFrame>> {
  private readonly taken = new Set<ServerFrame>();

  constructor(address: string, token: string | undefined) {
    const client = new Client(address, credentials.createInsecure());
    const serialize = (v: ClientFrame | Buffer) => (Buffer.isBuffer(v) ? v : Buffer.from(ClientFrame.encode(v).finish()));
    super(
      client.makeBidiStreamRequest(`${CHAT}Connect`, serialize, (b) => ServerFrame.decode(b), bearer(token)),
      () => client.close(),
    );
  }

  write(frame: ClientFrame | Buffer): void {
    this.call.write(frame);
  }

  /** The first frame not taken yet that `pick` accepts; fails if the stream ends first. */
  async take<T>(pick: (frame: ServerFrame) => T | undefined, what: string): Promise<T> {
    let found: T | undefined;
    await this.until(
      () => {
        for (const frame of this.frames) {
          if (this.taken.has(frame)) continue;
          found = pick(frame);
          if (found === undefined) continue;
          this.taken.add(frame);
          return true;
        }
        if (this.status) throw new Error(`stream ended (${status[this.status.code]}: ${this.status.details}) before ${what}`);
        return false;
      },
      what,
      WAIT_MS,
    );
    return found as T;
  }

  /** The server's answer to the send with this id: `sent` or `send_failed`. */
  answer(id: string) {
    return this.take((f) => (f.sent?.clientMsgId === id || f.sendFailed?.clientMsgId === id ? f : undefined), `answer to "${id}"`);
  }

  /** A ping answered by its pong: the stream is open and reading. */
  async ping(): Promise<void> {
    const nonce = randomUUID();
    this.write({ ping: { nonce } });
    await this.take((f) => (f.pong?.nonce === nonce ? f : undefined), `pong ${nonce}`);
  }

  /** A good send, acknowledged with `sent`: the stream still works. */
  async sendsFine(t: ExecutionContext, body: string): Promise<void> {
    const clientMsgId = randomUUID();
    this.write({ send: { clientMsgId, to: { broadcast: true }, body } });
    t.is((await this.answer(clientMsgId)).sent?.message?.body, body);
    t.is(this.status, undefined);
  }

  async ended(): Promise<FinalStatus | undefined> {
    await this.until(() => this.status !== undefined, "the stream to end", WAIT_MS);
    return this.status;
  }
}

async function openStream(address: string, token: string): Promise<ByteStream> {
  const stream = new ByteStream(address, token);
  stream.write({ hello: { cursors: [], acceptBatch: false } });
  await stream.take((f) => f.caughtUp, "caught_up");
  return stream;
}

/** The status code a server stream ends with. */
function endCode(call: ClientReadableStream<unknown>): Promise<number> {
  call.on("error", () => undefined); // the status event carries it
  return new Promise((resolve) => call.on("status", (s: StatusObject) => resolve(s.code)));
}

/** Unary Send with any request, including ones ParleyApi's signature would not allow. */
function sendRaw(api: ParleyApi, request: SendRequest): Promise<SendResponse> {
  return new Promise((resolve, reject) => api.chat.send(request, bearer(api.token), (err, res) => (err ? reject(err) : resolve(res))));
}

async function refused(t: ExecutionContext, call: Promise<unknown>, code: status, label: string): Promise<void> {
  const err = (await t.throwsAsync(call, undefined, label)) as ServiceError | undefined;
  t.is(err?.code, code, `${label}: got ${err?.code} ${err?.details}`);
  t.truthy(err?.details, label);
}

type SendCase = { label: string; request: SendRequest; code: status };

/** Each send refused by Send with `code`, and by the Connect stream with a send_failed that echoes the id. */
async function refusedEverywhere(t: ExecutionContext, user: TestUser, address: string, cases: SendCase[]): Promise<void> {
  for (const { label, request, code } of cases) await refused(t, sendRaw(user.api, request), code, `Send: ${label}`);
  const stream = await openStream(address, user.token);
  t.teardown(() => stream.close());
  for (const { label, request, code } of cases) {
    stream.write({ send: request });
    const answer = await stream.answer(request.clientMsgId);
    t.is(answer.sendFailed?.code, code, `Connect: ${label}`);
    t.truthy(answer.sendFailed?.reason, `Connect: ${label}`);
    await stream.ping();
  }
  await stream.sendsFine(t, "still here");
}

const sendCase = (label: string, to: Target | undefined, code: status, body = "hello", clientMsgId: string = randomUUID()) =>
  ({ label, request: { clientMsgId, to, body }, code }) satisfies SendCase;

/** A token that was valid and is now expired: a fresh, never-used login whose session row is backdated. */
async function expiredToken(sql: Sql, address: string, user: TestUser): Promise<string> {
  const api = new ParleyApi(address);
  const grant = await api.logIn(user.username, PASSWORD);
  const newest = "SELECT max(id) FROM sessions WHERE user_id = $1";
  const result = await sql(`UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE id = (${newest})`, [user.id]);
  if (result.rowCount !== 1) throw new Error("no session to expire");
  return grant.token;
}

async function revokedToken(address: string, user: TestUser): Promise<string> {
  const api = new ParleyApi(address);
  const { token } = await api.logIn(user.username, PASSWORD);
  await api.logOut();
  return token;
}

/**
 * A missing, a malformed, an unknown, a revoked and, where the test can reach
 * the database to backdate a session (not the embedded PGlite), an expired token.
 */
async function badTokens(sql: Sql | undefined, address: string): Promise<[string, string | undefined][]> {
  const user = await newUser(address);
  const tokens: [string, string | undefined][] = [
    ["missing", undefined],
    ["malformed", "not a token"],
    ["unknown", "A".repeat(43)],
    ["revoked", await revokedToken(address, user)],
  ];
  if (sql !== undefined) tokens.push(["expired", await expiredToken(sql, address, user)]);
  return tokens;
}

/**
 * Registers the error suite on `test`: two servers of one fresh deployment of
 * `backend`, one with the default limits and one that allows a burst of 3
 * sends and 1 a second.
 */
export function chatErrorsSuite(test: SerialFn, backend: Backend): void {
  /** The expired token needs a session row backdated from outside, which the embedded PGlite does not allow. */
  const tokens = backend.databaseFromOutside ? "missing, bad, expired or revoked token" : "missing, bad or revoked token";
  let deployment: Deployment | undefined;
  let servers: [TestServer, TestServer] | undefined;
  const server = () => (servers as [TestServer, TestServer])[0];
  const limited = () => (servers as [TestServer, TestServer])[1];

  test.before(async () => {
    deployment = await backend.deploy();
    const started = deployment;
    servers = await Promise.all([started.start(), started.start({ RATE_LIMIT_PER_SECOND: "1", RATE_LIMIT_BURST: "3" })]);
  });

  test.after(`${backend.name}: both servers still serve, and logged no error, after every bad request`, async (t) => {
    for (const each of [server(), limited()]) {
      const user = await newUser(each.address);
      t.true((await user.api.listConversations()).some((c) => c.id === "broadcast"));
      const stream = await openStream(each.address, user.token);
      await stream.ping();
      stream.close();
      t.deepEqual(
        each.logs.filter((line) => /"level":(50|60)/.test(line)),
        [],
      );
    }
  });

  test.after.always(async () => {
    await deployment?.close();
  });

  test(`${backend.name}: UNAUTHENTICATED: every unary call refuses a ${tokens}`, async (t) => {
    for (const [label, token] of await badTokens(deployment?.sql, server().address)) {
      const api = new ParleyApi(server().address, token);
      const calls: [string, Promise<unknown>][] = [
        ["Send", api.send({ broadcast: true }, "hi", randomUUID())],
        ["GetHistory", api.getHistory("broadcast")],
        ["ListConversations", api.listConversations()],
        ["MarkRead", api.markRead("broadcast", 1)],
        ["CreateGroup", api.createGroup(uniqueName("g"))],
        ["JoinGroup", api.joinGroup(uniqueName("g"))],
        ["LeaveGroup", api.leaveGroup(uniqueName("g"))],
        ["ListGroups", api.listGroups()],
        ["ListOnlineUsers", api.listOnlineUsers()],
      ];
      for (const [rpc, call] of calls) await refused(t, call, status.UNAUTHENTICATED, `${rpc} with a ${label} token`);
      api.close();
    }
  });

  test(`${backend.name}: UNAUTHENTICATED: Connect and Subscribe end at once for a ${tokens}`, async (t) => {
    const { address } = server();
    for (const [label, token] of await badTokens(deployment?.sql, server().address)) {
      const stream = new ByteStream(address, token);
      stream.write({ hello: { cursors: [], acceptBatch: false } });
      t.is((await stream.ended())?.code, status.UNAUTHENTICATED, `Connect with a ${label} token`);
      t.false(
        stream.frames.some((f) => f.ready || f.caughtUp),
        `Connect with a ${label} token sent frames`,
      );
      stream.close();

      const api = new ParleyApi(address, token);
      const sub = api.chat.subscribe({ cursors: [], acceptBatch: false }, bearer(token));
      const frames: ServerFrame[] = [];
      sub.on("data", (f: ServerFrame) => frames.push(f));
      t.is(await endCode(sub), status.UNAUTHENTICATED, `Subscribe with a ${label} token`);
      t.deepEqual(frames, []);
      api.close();
    }
  });

  test(`${backend.name}: UNAUTHENTICATED: logging out ends the streams opened with that token`, async (t) => {
    const { address } = server();
    const user = await newUser(address);
    const api = new ParleyApi(address);
    const { token } = await api.logIn(user.username, PASSWORD);
    const doomed = await openStream(address, token);
    const other = await openStream(address, user.token);
    t.teardown(() => {
      for (const s of [doomed, other]) s.close();
    });
    await api.logOut();
    t.is((await doomed.ended())?.code, status.UNAUTHENTICATED);
    await other.ping();
  });

  test(`${backend.name}: NOT_FOUND: unknown user, group or conversation, on unary calls and on Connect`, async (t) => {
    const { address } = server();
    const user = await newUser(address);
    const ghost = uniqueName("ghost");
    await refusedEverywhere(t, user, address, [
      sendCase("DM to an unknown user", { username: ghost }, status.NOT_FOUND),
      sendCase("to an unknown group", { group: ghost }, status.NOT_FOUND),
    ]);
    for (const id of ["dm:999999998:999999999", `group:${ghost}`, "no-such-conversation"]) {
      await refused(t, user.api.getHistory(id), status.NOT_FOUND, `GetHistory ${id}`);
      await refused(t, user.api.markRead(id, 1), status.NOT_FOUND, `MarkRead ${id}`);
    }
    await refused(t, user.api.joinGroup(ghost), status.NOT_FOUND, "JoinGroup");
    await refused(t, user.api.leaveGroup(ghost), status.NOT_FOUND, "LeaveGroup");

    // Frames that have no answer of their own must not end the stream either.
    const stream = await openStream(address, user.token);
    t.teardown(() => stream.close());
    stream.write({ read: { conversationId: "no-such-conversation", seq: 3 } });
    stream.write({ typing: { to: { username: ghost } } });
    stream.write({ typing: { to: { group: ghost } } });
    await stream.ping();
  });

  test(`${backend.name}: PERMISSION_DENIED: another group or DM, on unary calls and on Connect; nothing is stored`, async (t) => {
    const { address } = server();
    const [owner, peer, outsider] = await Promise.all([newUser(address), newUser(address), newUser(address)]);
    const group = await owner.api.createGroup(uniqueName("Priv"));
    const dm = (await owner.api.send({ username: peer.username }, "private", randomUUID())).conversationId;
    await refusedEverywhere(t, outsider, address, [
      sendCase("to a group I am not in", { group: group.name }, status.PERMISSION_DENIED),
      sendCase("to a group I am not in, other case", { group: group.name.toUpperCase() }, status.PERMISSION_DENIED),
    ]);
    await refused(t, outsider.api.getHistory(group.conversationId), status.PERMISSION_DENIED, "history of a group I am not in");
    await refused(t, outsider.api.getHistory(dm), status.PERMISSION_DENIED, "history of someone else's DM");
    await refused(t, outsider.api.markRead(dm, 1), status.PERMISSION_DENIED, "MarkRead of someone else's DM");
    await refused(t, outsider.api.markRead(group.conversationId, 1), status.PERMISSION_DENIED, "MarkRead of a group I am not in");
    await refused(t, outsider.api.leaveGroup(group.name), status.PERMISSION_DENIED, "leave a group I am not in");

    const stream = await openStream(address, outsider.token);
    t.teardown(() => stream.close());
    stream.write({ typing: { to: { group: group.name } } });
    stream.write({ read: { conversationId: dm, seq: 1 } });
    await stream.ping();

    t.deepEqual((await owner.api.getHistory(group.conversationId)).messages, []);
    t.deepEqual(
      (await owner.api.getHistory(dm)).messages.map((m) => m.body),
      ["private"],
    );
    t.is((await owner.api.listGroups(group.name))[0]?.memberCount, 1);
  });

  test(`${backend.name}: INVALID_ARGUMENT: bodies, names, client_msg_id and targets, on unary calls and on Connect`, async (t) => {
    const { address } = server();
    const [user, peer] = await Promise.all([newUser(address), newUser(address)]);
    const to = { username: peer.username };
    await refusedEverywhere(t, user, address, [
      sendCase("empty body", to, status.INVALID_ARGUMENT, ""),
      sendCase("whitespace body", to, status.INVALID_ARGUMENT, " \n\t\u00a0 "),
      sendCase("4097 ASCII bytes", to, status.INVALID_ARGUMENT, "a".repeat(4097)),
      sendCase("1366 × € = 4098 bytes", to, status.INVALID_ARGUMENT, "€".repeat(1366)),
      sendCase("1025 × 😀 = 4100 bytes", to, status.INVALID_ARGUMENT, "😀".repeat(1025)),
      sendCase("empty client_msg_id", to, status.INVALID_ARGUMENT, "hello", ""),
      sendCase("65-character client_msg_id", to, status.INVALID_ARGUMENT, "hello", "x".repeat(65)),
      sendCase("no target", undefined, status.INVALID_ARGUMENT),
      sendCase("empty target", {}, status.INVALID_ARGUMENT),
      sendCase("broadcast: false", { broadcast: false }, status.INVALID_ARGUMENT),
      sendCase("bad username", { username: "no spaces!" }, status.INVALID_ARGUMENT),
      sendCase("short username", { username: "ab" }, status.INVALID_ARGUMENT),
      sendCase("long group name", { group: "g".repeat(33) }, status.INVALID_ARGUMENT),
      sendCase("bad group name", { group: "a/b" }, status.INVALID_ARGUMENT),
      sendCase("U+0000 in the body", to, status.INVALID_ARGUMENT, "a\u0000b"),
      sendCase("U+0000 in the username", { username: `${peer.username}\u0000` }, status.INVALID_ARGUMENT),
      sendCase("65 emoji as client_msg_id (130 UTF-16 units)", to, status.INVALID_ARGUMENT, "hello", "😀".repeat(65)),
    ]);
    for (const name of ["ab", "x".repeat(33), "has space", "émile", "semi;colon", ""]) {
      await refused(t, user.api.createGroup(name), status.INVALID_ARGUMENT, `CreateGroup "${name}"`);
      await refused(t, user.api.joinGroup(name), status.INVALID_ARGUMENT, `JoinGroup "${name}"`);
      await refused(t, user.api.leaveGroup(name), status.INVALID_ARGUMENT, `LeaveGroup "${name}"`);
    }
    await refused(t, user.api.getHistory(""), status.INVALID_ARGUMENT, "GetHistory without a conversation");
    await refused(t, user.api.getHistory("broadcast", -1), status.INVALID_ARGUMENT, "GetHistory before_seq -1");
    await refused(t, user.api.getHistory("broadcast", 0, -5), status.INVALID_ARGUMENT, "GetHistory limit -5");
    await refused(t, user.api.markRead("broadcast", -1), status.INVALID_ARGUMENT, "MarkRead seq -1");
    await refused(t, user.api.getHistory("x\u0000"), status.INVALID_ARGUMENT, "GetHistory of a conversation_id with U+0000");
    await refused(t, user.api.markRead("x\u0000", 1), status.INVALID_ARGUMENT, "MarkRead of a conversation_id with U+0000");
    await refused(t, user.api.listGroups("\u0000"), status.INVALID_ARGUMENT, "ListGroups with U+0000");
    const conversations = await peer.api.listConversations();
    t.deepEqual(
      conversations.filter((c) => c.kind !== ConversationKind.CONVERSATION_KIND_BROADCAST),
      [],
      "a refused DM made a conversation",
    );
  });

  test(`${backend.name}: INVALID_ARGUMENT stops exactly at the limits: 4096 bytes and 64-character ids pass everywhere`, async (t) => {
    const { address } = server();
    const [user, peer] = await Promise.all([newUser(address), newUser(address)]);
    const bodies = ["a".repeat(4096), `${"€".repeat(1365)}a`, "😀".repeat(1024), "x"];
    const id64 = () => randomUUID().replaceAll("-", "").repeat(2);
    const stream = await openStream(address, user.token);
    t.teardown(() => stream.close());
    for (const body of bodies) {
      const unary = await sendRaw(user.api, { clientMsgId: id64(), to: { username: peer.username }, body });
      t.is(unary.message?.body, body);
      const request = { clientMsgId: id64(), to: { username: peer.username }, body };
      t.is(request.clientMsgId.length, 64);
      stream.write({ send: request });
      t.is((await stream.answer(request.clientMsgId)).sent?.message?.body, body);
    }
    // client_msg_id counts characters (code points): 64 emoji are 128 UTF-16 units.
    const emojiId = "😀".repeat(64);
    t.is((await sendRaw(user.api, { clientMsgId: emojiId, to: { username: peer.username }, body: "emoji id" })).message?.clientMsgId, emojiId);
    const history = await peer.api.getHistory(stream.frames.find((f) => f.sent)?.sent?.message?.conversationId ?? "");
    t.deepEqual(
      history.messages.map((m) => m.seq),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  });

  test(`${backend.name}: ALREADY_EXISTS: CreateGroup with a taken name, ignoring case`, async (t) => {
    const { address } = server();
    const [first, second] = await Promise.all([newUser(address), newUser(address)]);
    const name = uniqueName("Taken");
    await first.api.createGroup(name);
    for (const attempt of [name, name.toLowerCase(), name.toUpperCase()]) {
      await refused(t, second.api.createGroup(attempt), status.ALREADY_EXISTS, `second: ${attempt}`);
      await refused(t, first.api.createGroup(attempt), status.ALREADY_EXISTS, `first: ${attempt}`);
    }
    const groups = await second.api.listGroups(name);
    t.deepEqual(
      groups.map((g) => [g.name, g.memberCount, g.isMember]),
      [[name, 1, false]],
    );
  });

  /** What RATE_LIMIT_BURST=3 and RATE_LIMIT_PER_SECOND=1 let through since `started`. */
  const allowed = (started: number) => 3 + Math.ceil((Date.now() - started) / 1000);

  test(`${backend.name}: RESOURCE_EXHAUSTED: a flood of unary sends is cut at the burst, and sending resumes later`, async (t) => {
    const { address } = limited();
    const [user, peer] = await Promise.all([newUser(address), newUser(address)]);
    const started = Date.now();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => user.api.send({ username: peer.username }, `flood ${i}`, randomUUID())),
    );
    const sent = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const codes = results.flatMap((r) => (r.status === "rejected" ? [(r.reason as ServiceError).code] : []));
    t.true(sent.length >= 3 && sent.length <= allowed(started), `${sent.length} sends passed`);
    t.true(codes.length > 0, "nothing was refused");
    t.deepEqual(codes, Array(10 - sent.length).fill(status.RESOURCE_EXHAUSTED));
    // What was acknowledged is stored, gap-free; nothing else is.
    const history = await peer.api.getHistory(sent[0].conversationId);
    t.deepEqual(history.messages.map((m) => m.id).sort(), sent.map((m) => m.id).sort());
    t.deepEqual(
      history.messages.map((m) => m.seq),
      sent.map((_, i) => i + 1),
    );
    await sleep(1100);
    t.is((await user.api.send({ username: peer.username }, "later", randomUUID())).body, "later");
  });

  test(`${backend.name}: RESOURCE_EXHAUSTED on Connect: flooded sends get send_failed, and the stream stays usable`, async (t) => {
    const { address } = limited();
    const user = await newUser(address);
    const stream = await openStream(address, user.token);
    t.teardown(() => stream.close());
    const ids = Array.from({ length: 10 }, () => randomUUID());
    const started = Date.now();
    for (const id of ids) stream.write({ send: { clientMsgId: id, to: { broadcast: true }, body: `flood ${id}` } });
    const answers = await Promise.all(ids.map((id) => stream.answer(id)));
    const sent = answers.filter((a) => a.sent);
    t.true(sent.length >= 3 && sent.length <= allowed(started), `${sent.length} sends passed`);
    t.true(sent.length < ids.length, "nothing was refused");
    for (const a of answers.filter((x) => !x.sent)) {
      t.is(a.sendFailed?.code, status.RESOURCE_EXHAUSTED);
      t.truthy(a.sendFailed?.reason);
    }
    await stream.ping();
    await sleep(1100);
    await stream.sendsFine(t, "after the flood");
  });

  test(`${backend.name}: malformed bytes: unary calls get INVALID_ARGUMENT, Subscribe ends with it`, async (t) => {
    const { address } = server();
    const user = await newUser(address);
    const client = new Client(address, credentials.createInsecure());
    t.teardown(() => client.close());
    for (const garbage of GARBAGE) {
      for (const rpc of ["Send", "GetHistory", "MarkRead", "CreateGroup", "ListGroups", "ListConversations"]) {
        const call = new Promise((resolve, reject) =>
          client.makeUnaryRequest(
            `${CHAT}${rpc}`,
            () => garbage,
            (b) => b,
            null,
            bearer(user.token),
            (e, r) => (e ? reject(e) : resolve(r)),
          ),
        );
        await refused(t, call, status.INVALID_ARGUMENT, `${rpc} with ${garbage.toString("hex")}`);
      }
      const sub = client.makeServerStreamRequest(
        `${CHAT}Subscribe`,
        () => garbage,
        (b) => b,
        null,
        bearer(user.token),
      );
      t.is(await endCode(sub), status.INVALID_ARGUMENT, `Subscribe with ${garbage.toString("hex")}`);
    }
  });

  test(`${backend.name}: malformed bytes on Connect: send_failed with code 3, before and after hello, and the stream stays open`, async (t) => {
    const { address } = server();
    const user = await newUser(address);
    const stream = new ByteStream(address, user.token);
    t.teardown(() => stream.close());
    // Before hello, garbage and a send are both refused, and hello still opens the stream.
    stream.write(GARBAGE[0]);
    t.is((await stream.answer("")).sendFailed?.code, status.INVALID_ARGUMENT);
    stream.write({ send: { clientMsgId: "too-early", to: { broadcast: true }, body: "hi" } });
    t.is((await stream.answer("too-early")).sendFailed?.code, status.INVALID_ARGUMENT);
    stream.write({ hello: { cursors: [], acceptBatch: false } });
    t.is((await stream.take((f) => f.ready, "ready")).user?.username, user.username);
    await stream.take((f) => f.caughtUp, "caught_up");
    for (const garbage of GARBAGE) {
      stream.write(garbage);
      const answer = await stream.answer("");
      t.is(answer.sendFailed?.code, status.INVALID_ARGUMENT, garbage.toString("hex"));
      t.truthy(answer.sendFailed?.reason);
      await stream.ping();
    }
    // Well-formed frames that make no sense are ignored, never fatal.
    for (const frame of [
      {},
      { hello: { cursors: [], acceptBatch: false } },
      { typing: { to: undefined } },
      { read: { conversationId: "", seq: -1 } },
    ]) {
      stream.write(frame);
    }
    await stream.ping();
    await stream.sendsFine(t, "after garbage");
  });
}
