// The embedded gRPC-web gateway at the byte level: a real Parley server with
// its web server on a free port, and raw HTTP/1.1 requests. What is checked is
// what Envoy's grpc_web and cors filters do with envoy/envoy.yaml (sources:
// grpc/grpc doc/PROTOCOL-WEB.md; Envoy's grpc_web filter): binary and text
// modes, messages streamed as they come, trailers as the last frame, errors
// before any message as a trailers-only response, the CORS policy, malformed
// requests, and a browser that goes away.
import anyTest, { type TestFn } from "ava";
import {
  LogInRequestSchema,
  SignUpRequestSchema,
  SignUpResponseSchema,
  WhoAmIRequestSchema,
  WhoAmIResponseSchema,
} from "../gen/es/parley/auth/v1/auth_pb.js";
import { SendRequestSchema, SendResponseSchema, ServerFrameSchema, SubscribeRequestSchema } from "../gen/es/parley/chat/v1/chat_pb.js";
import { newUser, PASSWORD, uniqueName, type TestUser } from "./helpers/clients.js";
import { decodeMessage, grpcWebHeaders, messageFrame, parseFrames, parseTrailers, rawRequest } from "./helpers/grpc-web-raw.js";
import { scratchDir } from "./helpers/infra.js";
import { startServer, type InProcessServer } from "./helpers/servers.js";

const test = anyTest as TestFn<{ server: InProcessServer; web: string; alice: TestUser; bob: TestUser }>;

test.before(async (t) => {
  const server = await startServer({ DATABASE_URL: undefined, REDIS_URL: undefined, PARLEY_DATA_DIR: scratchDir("gateway"), WEB_PORT: "0" });
  t.context.server = server;
  t.context.web = server.webUrl ?? "";
  [t.context.alice, t.context.bob] = await Promise.all([newUser(server.address, "al"), newUser(server.address, "bo")]);
});
test.beforeEach((t) => {
  t.timeout(20_000);
});
test.after.always(async (t) => {
  await t.context.server?.shutdown();
});

const SIGN_UP = "/parley.auth.v1.AuthService/SignUp";
const WHO_AM_I = "/parley.auth.v1.AuthService/WhoAmI";
const SEND = "/parley.chat.v1.ChatService/Send";
const SUBSCRIBE = "/parley.chat.v1.ChatService/Subscribe";

test("unary in binary mode: one message frame, then the trailers frame last", async (t) => {
  const username = uniqueName("bin");
  const call = rawRequest(t.context.web, SIGN_UP, {
    headers: grpcWebHeaders(),
    body: [messageFrame(SignUpRequestSchema, { username, password: PASSWORD })],
  });
  const res = await call.done;
  t.is(res.status, 200);
  t.is(res.headers["content-type"], "application/grpc-web+proto");
  const frames = parseFrames(res.body);
  t.deepEqual(
    frames.map((f) => f.flag),
    [0x00, 0x80],
  );
  t.is(decodeMessage(SignUpResponseSchema, frames[0] as never).user?.username, username);
  t.is(parseTrailers(frames[1]?.payload as Buffer)["grpc-status"], "0");
  t.is(res.headers["grpc-status"], undefined, "the status is in the body, not the headers");
});

test("text mode: a base64 request in several chunks, a base64 response (accept: grpc-web-text)", async (t) => {
  const { alice } = t.context;
  const encoded = messageFrame(WhoAmIRequestSchema, {}).toString("base64");
  const call = rawRequest(t.context.web, WHO_AM_I, {
    headers: { "content-type": "application/grpc-web-text", accept: "application/grpc-web-text", authorization: `Bearer ${alice.token}` },
    // Split inside a 4-character group.
    body: [encoded.slice(0, 3), encoded.slice(3)],
  });
  const res = await call.done;
  t.is(res.status, 200);
  t.is(res.headers["content-type"], "application/grpc-web-text+proto");
  const text = res.body.toString("latin1");
  t.regex(text, /^[A-Za-z0-9+/=]+$/);
  // Each frame is its own padded base64 segment: decode segment by segment.
  const segments = text.match(/[A-Za-z0-9+/]*(?:={1,2}|$)/g)?.filter((s) => s !== "") ?? [];
  const frames = parseFrames(Buffer.concat(segments.map((s) => Buffer.from(s, "base64"))));
  t.deepEqual(
    frames.map((f) => f.flag),
    [0x00, 0x80],
  );
  t.is(decodeMessage(WhoAmIResponseSchema, frames[0] as never).user?.username, alice.username);
  t.is(parseTrailers(frames[1]?.payload as Buffer)["grpc-status"], "0");
});

test("text request without the text accept header gets a binary response, as Envoy decides", async (t) => {
  const username = uniqueName("txt");
  const body = messageFrame(SignUpRequestSchema, { username, password: PASSWORD }).toString("base64");
  const res = await rawRequest(t.context.web, SIGN_UP, { headers: { "content-type": "application/grpc-web-text+proto" }, body: [body] }).done;
  t.is(res.headers["content-type"], "application/grpc-web+proto");
  t.is(decodeMessage(SignUpResponseSchema, parseFrames(res.body)[0] as never).user?.username, username);
});

test("an error before any message is trailers-only: grpc-status in the headers, no body", async (t) => {
  const res = await rawRequest(t.context.web, WHO_AM_I, { headers: grpcWebHeaders(), body: [messageFrame(WhoAmIRequestSchema, {})] }).done;
  t.is(res.status, 200);
  t.is(res.headers["grpc-status"], "16"); // UNAUTHENTICATED
  t.truthy(res.headers["grpc-message"]);
  t.is(res.headers["content-type"], "application/grpc-web+proto");
  t.is(res.body.length, 0);
});

test("Subscribe streams each frame as it comes, before the call ends", async (t) => {
  const { alice, bob } = t.context;
  const call = rawRequest(t.context.web, SUBSCRIBE, {
    headers: grpcWebHeaders({ authorization: `Bearer ${bob.token}` }),
    body: [messageFrame(SubscribeRequestSchema, {})],
  });
  const { status, headers } = await call.headers;
  t.is(status, 200);
  t.is(headers["content-type"], "application/grpc-web+proto");
  const frames = (body: Buffer) =>
    parseFrames(body, "ignore")
      .filter((f) => f.flag === 0)
      .map((f) => decodeMessage(ServerFrameSchema, f).frame);
  const kinds = (body: Buffer) => frames(body).map((f) => f.case ?? "");
  await call.until((body) => kinds(body).includes("caughtUp"));
  t.false(call.ended(), "the stream is still open");
  const body = `hello over gRPC-web ${uniqueName()}`;
  await alice.api.send({ username: bob.username }, body, uniqueName("m"));
  await call.until((received) => frames(received).some((f) => f.case === "message" && f.value.body === body));
  t.false(call.ended());
  call.abort();
});

test("a unary Send with a token goes through, with authorization passed upstream", async (t) => {
  const { alice, bob } = t.context;
  const res = await rawRequest(t.context.web, SEND, {
    headers: grpcWebHeaders({ authorization: `Bearer ${alice.token}`, "grpc-timeout": "5S" }),
    body: [messageFrame(SendRequestSchema, { clientMsgId: uniqueName("c"), to: { kind: { case: "username", value: bob.username } }, body: "hi" })],
  }).done;
  const frames = parseFrames(res.body);
  t.is(decodeMessage(SendResponseSchema, frames[0] as never).message?.body, "hi");
  t.is(parseTrailers(frames.at(-1)?.payload as Buffer)["grpc-status"], "0");
});

test("an expired grpc-timeout is honoured upstream: DEADLINE_EXCEEDED", async (t) => {
  const res = await rawRequest(t.context.web, SIGN_UP, {
    headers: grpcWebHeaders({ "grpc-timeout": "1n" }),
    body: [messageFrame(SignUpRequestSchema, { username: uniqueName("dl"), password: PASSWORD })],
  }).done;
  const status = res.headers["grpc-status"] ?? parseTrailers(parseFrames(res.body).at(-1)?.payload as Buffer)["grpc-status"];
  t.is(status, "4");
});

test("an unknown method is UNIMPLEMENTED, trailers-only", async (t) => {
  const res = await rawRequest(t.context.web, "/parley.chat.v1.ChatService/Nope", {
    headers: grpcWebHeaders(),
    body: [messageFrame(LogInRequestSchema, {})],
  }).done;
  t.is(res.headers["grpc-status"], "12");
  t.is(res.body.length, 0);
});
