// The embedded web server on WEB_PORT, over raw HTTP/1.1: the app's files,
// CORS as envoy/envoy.yaml's cors filter answers it, malformed gRPC-web
// requests (a clear status, and the server keeps serving), a browser that
// goes away (the call ends upstream), and the shutdown drain reaching the
// browser (the drain frame, then UNAVAILABLE as the last frame).
import anyTest, { type TestFn } from "ava";
import { SignUpRequestSchema, SignUpResponseSchema } from "../gen/es/parley/auth/v1/auth_pb.js";
import { ServerFrameSchema, SubscribeRequestSchema } from "../gen/es/parley/chat/v1/chat_pb.js";
import { eventually, newUser, PASSWORD, uniqueName, type TestUser } from "./helpers/clients.js";
import { decodeMessage, grpcWebHeaders, messageFrame, parseFrames, parseTrailers, rawRequest } from "./helpers/grpc-web-raw.js";
import { scratchDir } from "./helpers/infra.js";
import { startServer, type InProcessServer } from "./helpers/servers.js";

const test = anyTest as TestFn<{ server: InProcessServer; web: string; watcher: TestUser }>;

const embedded = (extra: Record<string, string> = {}) =>
  startServer({
    DATABASE_URL: undefined,
    REDIS_URL: undefined,
    PARLEY_DATA_DIR: scratchDir("web"),
    WEB_PORT: "0",
    PRESENCE_GRACE_SECONDS: "1",
    ...extra,
  });

test.before(async (t) => {
  t.context.server = await embedded();
  t.context.web = t.context.server.webUrl ?? "";
  t.context.watcher = await newUser(t.context.server.address, "wa");
});
test.beforeEach((t) => {
  t.timeout(20_000);
});
test.after.always(async (t) => {
  await t.context.server?.shutdown();
});

test("GET / , /app.js and /app.css serve the built app; other paths are 404", async (t) => {
  const page = await fetch(`${t.context.web}/`);
  t.is(page.status, 200);
  t.regex(page.headers.get("content-type") ?? "", /^text\/html/);
  t.regex(await page.text(), /<script type="module" src="\/app\.js">/);
  const script = await fetch(`${t.context.web}/app.js`);
  t.regex(script.headers.get("content-type") ?? "", /^text\/javascript/);
  t.true((await script.text()).length > 100);
  t.regex((await fetch(`${t.context.web}/app.css`)).headers.get("content-type") ?? "", /^text\/css/);
  t.is((await fetch(`${t.context.web}/nope.js`)).status, 404);
  t.is((await fetch(`${t.context.web}/`, { method: "DELETE" })).status, 405);
});

test("a CORS preflight is answered with envoy.yaml's policy, without credentials", async (t) => {
  const res = await rawRequest(t.context.web, "/parley.auth.v1.AuthService/SignUp", {
    method: "OPTIONS",
    headers: { origin: "http://example.test", "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-grpc-web" },
  }).done;
  t.is(res.status, 200);
  t.is(res.headers["access-control-allow-origin"], "http://example.test");
  t.is(res.headers["access-control-allow-methods"], "GET, PUT, DELETE, POST, OPTIONS");
  t.regex(res.headers["access-control-allow-headers"] ?? "", /(^|, )authorization(,|$)/);
  t.regex(res.headers["access-control-allow-headers"] ?? "", /(^|, )grpc-timeout(,|$)/);
  t.is(res.headers["access-control-max-age"], "86400");
  t.is(res.headers["access-control-allow-credentials"], undefined);
  t.is(res.body.length, 0);
});

test("a cross-origin gRPC-web answer exposes grpc-status, grpc-message and grpc-status-details-bin", async (t) => {
  const res = await rawRequest(t.context.web, "/parley.auth.v1.AuthService/SignUp", {
    headers: grpcWebHeaders({ origin: "http://example.test" }),
    body: [messageFrame(SignUpRequestSchema, { username: uniqueName("co"), password: PASSWORD })],
  }).done;
  t.is(res.headers["access-control-allow-origin"], "http://example.test");
  t.is(res.headers["access-control-expose-headers"], "grpc-status, grpc-message, grpc-status-details-bin");
  t.is(res.headers["access-control-allow-credentials"], undefined);
  // Same-origin requests (no origin header) get no CORS headers.
  const same = await rawRequest(t.context.web, "/parley.auth.v1.AuthService/SignUp", {
    headers: grpcWebHeaders(),
    body: [messageFrame(SignUpRequestSchema, { username: uniqueName("so"), password: PASSWORD })],
  }).done;
  t.is(same.headers["access-control-allow-origin"], undefined);
});

const SIGN_UP = "/parley.auth.v1.AuthService/SignUp";

test("malformed requests get a clear answer, and the server keeps serving", async (t) => {
  const { web } = t.context;
  const text = { "content-type": "application/grpc-web-text", accept: "application/grpc-web-text" };
  const good = messageFrame(SignUpRequestSchema, { username: uniqueName("ok"), password: PASSWORD });

  const badChars = await rawRequest(web, SIGN_UP, { headers: text, body: ["!!!!"] }).done;
  t.is(badChars.headers["grpc-status"], "13");
  t.is(decodeURIComponent(String(badChars.headers["grpc-message"])), "Bad gRPC-web request, invalid base64 data.");

  const badLength = await rawRequest(web, SIGN_UP, { headers: text, body: [good.toString("base64").slice(0, -1)] }).done;
  t.is(badLength.headers["grpc-status"], "13");

  const truncated = await rawRequest(web, SIGN_UP, { headers: grpcWebHeaders(), body: [good.subarray(0, good.length - 3)] }).done;
  t.is(truncated.headers["grpc-status"], "13");
  t.regex(decodeURIComponent(String(truncated.headers["grpc-message"])), /ends inside a frame/);

  const wrongType = await rawRequest(web, SIGN_UP, { headers: { "content-type": "application/json" }, body: ["{}"] }).done;
  t.is(wrongType.status, 415);

  const garbage = await rawRequest(web, SIGN_UP, { headers: grpcWebHeaders(), body: [Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff])] }).done;
  t.not(garbage.headers["grpc-status"] ?? parseTrailers(parseFrames(garbage.body).at(-1)?.payload ?? Buffer.alloc(0))["grpc-status"], "0");

  // A frame that claims 4 GiB is refused at its header, before its bytes are kept (Envoy bounds its buffers too).
  const huge = Buffer.from([0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
  const tooLarge = await rawRequest(web, SIGN_UP, { headers: grpcWebHeaders(), body: [huge, Buffer.alloc(64 * 1024)] }).done;
  t.is(tooLarge.headers["grpc-status"], "8");
  t.regex(decodeURIComponent(String(tooLarge.headers["grpc-message"])), /over the 4194304-byte limit/);

  // Still serving, in both modes.
  const after = await rawRequest(web, SIGN_UP, { headers: grpcWebHeaders(), body: [good] }).done;
  t.truthy(decodeMessage(SignUpResponseSchema, parseFrames(after.body)[0] as never).token);
});

test("a browser that goes away cancels its Subscribe upstream (the user goes offline)", async (t) => {
  const { web, watcher } = t.context;
  const carol = await newUser(t.context.server.address, "ca");
  const call = rawRequest(web, "/parley.chat.v1.ChatService/Subscribe", {
    headers: grpcWebHeaders({ authorization: `Bearer ${carol.token}` }),
    body: [messageFrame(SubscribeRequestSchema, {})],
  });
  await call.headers;
  await eventually(
    () => watcher.api.listOnlineUsers(),
    (names) => names.includes(carol.username),
  );
  call.abort();
  await eventually(
    () => watcher.api.listOnlineUsers(),
    (names) => !names.includes(carol.username),
  );
  t.pass();
});

test("shutdown drains gRPC-web streams: the drain frame, then UNAVAILABLE in the last frame", async (t) => {
  const server = await embedded();
  const dave = await newUser(server.address, "da");
  const call = rawRequest(server.webUrl ?? "", "/parley.chat.v1.ChatService/Subscribe", {
    headers: grpcWebHeaders({ authorization: `Bearer ${dave.token}` }),
    body: [messageFrame(SubscribeRequestSchema, {})],
  });
  await call.until((body) => body.length > 0);
  await server.shutdown();
  const res = await call.done;
  const frames = parseFrames(res.body);
  const last = frames.at(-1);
  t.is(last?.flag, 0x80);
  t.is(parseTrailers(last?.payload as Buffer)["grpc-status"], "14");
  const kinds = frames.filter((f) => f.flag === 0).map((f) => decodeMessage(ServerFrameSchema, f).frame.case);
  t.is(kinds.at(-1), "drain");
});
