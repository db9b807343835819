// End to end through the embedded gateway with the browser's own client:
// the buf-generated descriptors in gen/es and @connectrpc/connect-web's
// gRPC-web transport (which runs on Node 20's global fetch, as in a browser).
// SignUp, Send and Subscribe, with the bearer token in `authorization`.
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import anyTest, { type TestFn } from "ava";
import { AuthService } from "../gen/es/parley/auth/v1/auth_pb.js";
import { ChatService } from "../gen/es/parley/chat/v1/chat_pb.js";
import { PASSWORD, uniqueName } from "./helpers/clients.js";
import { scratchDir } from "./helpers/infra.js";
import { startServer, type InProcessServer } from "./helpers/servers.js";

const test = anyTest as TestFn<{ server: InProcessServer }>;

test.before(async (t) => {
  t.context.server = await startServer({ DATABASE_URL: undefined, REDIS_URL: undefined, PARLEY_DATA_DIR: scratchDir("web-client"), WEB_PORT: "0" });
});
test.after.always(async (t) => {
  await t.context.server?.shutdown();
});

function transport(baseUrl: string, token?: string) {
  const bearer: Interceptor = (next) => (req) => {
    if (token) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  return createGrpcWebTransport({ baseUrl, interceptors: [bearer] });
}

test("the generated browser client signs up, sends and receives on Subscribe through the gateway", async (t) => {
  t.timeout(20_000);
  const web = t.context.server.webUrl ?? "";
  const auth = createClient(AuthService, transport(web));
  const [alice, bob] = await Promise.all(["al", "bo"].map((p) => auth.signUp({ username: uniqueName(p), password: PASSWORD })));
  t.truthy(alice?.token);
  t.truthy(bob?.token);

  const bobChat = createClient(ChatService, transport(web, bob?.token));
  const stop = new AbortController();
  t.teardown(() => stop.abort());
  const stream = bobChat.subscribe({ acceptBatch: false }, { signal: stop.signal })[Symbol.asyncIterator]();
  // Replay first, then live.
  for (;;) {
    const { value } = await stream.next();
    if (value?.frame.case === "caughtUp") break;
  }

  const aliceChat = createClient(ChatService, transport(web, alice?.token));
  const body = `from the browser client ${uniqueName()}`;
  const sent = await aliceChat.send({ clientMsgId: uniqueName("c"), to: { kind: { case: "username", value: bob?.user?.username ?? "" } }, body });
  t.is(sent.message?.body, body);

  for (;;) {
    const { value } = await stream.next();
    if (value?.frame.case === "message") {
      t.is(value.frame.value.body, body);
      t.is(value.frame.value.id, sent.message?.id);
      break;
    }
  }

  // A server error reaches the client with its code and message.
  const denied = await t.throwsAsync(createClient(ChatService, transport(web)).listConversations({}));
  t.regex(String(denied?.message), /unauthenticated/i);
});
