// What grpcurl does, from Node: discover every service through server
// reflection alone (no .proto files on the client side), then call every rpc
// with JSON-shaped requests through the descriptors the server gave us.
import { createRequire } from "node:module";
import { credentials, loadPackageDefinition, Metadata, type GrpcObject, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadFileDescriptorSetFromBuffer, loadSync } from "@grpc/proto-loader";
import anyTest, { type TestFn } from "ava";
import { freshDatabase } from "./helpers/infra.js";
import { startServer, type InProcessServer } from "./helpers/servers.js";

const require = createRequire(import.meta.url);
const REFLECTION_PROTO = require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto");

const test = anyTest as TestFn<{ server: InProcessServer; api: GrpcObject }>;

type Dynamic = Record<string, (...args: unknown[]) => unknown> & { close(): void };

/** One reflection round-trip on a fresh bidi stream. */
function reflect(address: string, request: object): Promise<Record<string, any>> {
  const definition = loadSync(REFLECTION_PROTO, { keepCase: true });
  const pkg = loadPackageDefinition(definition) as any;
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on("data", (response: Record<string, any>) => {
      resolve(response);
      call.end();
      client.close();
    });
    call.on("error", reject);
    call.write(request);
  });
}

/** Builds a package definition from the descriptors reflection returns, as grpcurl does. */
async function discover(address: string, services: string[]): Promise<GrpcObject> {
  const files = new Map<string, Buffer>();
  for (const symbol of services) {
    const response = await reflect(address, { file_containing_symbol: symbol });
    for (const bytes of response.file_descriptor_response.file_descriptor_proto as Buffer[]) {
      files.set(bytes.toString("base64"), bytes);
    }
  }
  // A FileDescriptorSet is `repeated FileDescriptorProto file = 1`: each file as field 1, length-delimited.
  const parts: Buffer[] = [];
  for (const bytes of files.values()) parts.push(Buffer.from([0x0a]), varint(bytes.length), bytes);
  return loadPackageDefinition(loadFileDescriptorSetFromBuffer(Buffer.concat(parts), { keepCase: true, longs: Number, enums: String, defaults: true }));
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

function client(api: GrpcObject, path: string, address: string): Dynamic {
  const Ctor = path.split(".").reduce<any>((node, part) => node[part], api) as ServiceClientConstructor;
  return new Ctor(address, credentials.createInsecure()) as unknown as Dynamic;
}

function unary(c: Dynamic, method: string, request: object, token?: string): Promise<any> {
  const metadata = new Metadata();
  if (token) metadata.set("authorization", `Bearer ${token}`);
  return new Promise((resolve, reject) => c[method](request, metadata, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))));
}

const SERVICES = ["parley.auth.v1.AuthService", "parley.chat.v1.ChatService", "externalscaler.ExternalScaler", "grpc.health.v1.Health"];

test.before(async (t) => {
  t.context.server = await startServer({ DATABASE_URL: await freshDatabase() });
  t.context.api = await discover(t.context.server.address, SERVICES);
});
test.after.always(async (t) => {
  await t.context.server?.shutdown();
});

test("reflection describes map fields as protoc does, which Go's protobuf (grpcurl) requires", async (t) => {
  const response = await reflect(t.context.server.address, { file_containing_symbol: "externalscaler.ScaledObjectRef" });
  const bytes = Buffer.concat(response.file_descriptor_response.file_descriptor_proto as Buffer[]);
  t.true(bytes.includes(Buffer.from("ScalerMetadataEntry")));
  t.true(bytes.includes(Buffer.from(".externalscaler.ScaledObjectRef.ScalerMetadataEntry")));
});

test("reflection lists every service (grpcurl list)", async (t) => {
  const response = await reflect(t.context.server.address, { list_services: "" });
  const names = (response.list_services_response.service as { name: string }[]).map((s) => s.name);
  for (const name of SERVICES) t.true(names.includes(name), `${name} in ${names.join(", ")}`);
});

test("every rpc answers a client that knows only what reflection told it", async (t) => {
  const { api, server } = t.context;
  const address = server.address;
  const auth = client(api, "parley.auth.v1.AuthService", address);
  const chat = client(api, "parley.chat.v1.ChatService", address);
  const scaler = client(api, "externalscaler.ExternalScaler", address);
  const health = client(api, "grpc.health.v1.Health", address);
  const suffix = Math.random().toString(36).slice(2, 8);

  const alice = await unary(auth, "SignUp", { username: `refl_a${suffix}`, password: "correct-horse" });
  t.is(alice.user.username, `refl_a${suffix}`);
  const bob = await unary(auth, "SignUp", { username: `refl_b${suffix}`, password: "correct-horse" });
  const login = await unary(auth, "LogIn", { username: `refl_a${suffix}`, password: "correct-horse" });
  t.truthy(login.token);
  t.is((await unary(auth, "WhoAmI", {}, alice.token)).user.username, `refl_a${suffix}`);

  // Subscribe first, so the DM below arrives live.
  const metadata = new Metadata();
  metadata.set("authorization", `Bearer ${bob.token}`);
  const frames: any[] = [];
  const subscription = (chat.Subscribe as any)({ cursors: [] }, metadata);
  subscription.on("data", (frame: any) => frames.push(frame));
  subscription.on("error", () => undefined);

  const sent = await unary(chat, "Send", { client_msg_id: "r1", to: { username: `refl_b${suffix}` }, body: "hi from reflection" }, alice.token);
  t.is(sent.message.seq, 1);
  const history = await unary(chat, "GetHistory", { conversation_id: sent.message.conversation_id, before_seq: 0, limit: 10 }, bob.token);
  t.deepEqual(history.messages.map((m: any) => m.body), ["hi from reflection"]);
  const inbox = await unary(chat, "ListConversations", {}, bob.token);
  t.true(inbox.conversations.some((c: any) => c.title === `refl_a${suffix}` && c.unread === 1));
  t.is((await unary(chat, "MarkRead", { conversation_id: sent.message.conversation_id, seq: 1 }, bob.token)).last_read_seq, 1);
  t.is((await unary(chat, "CreateGroup", { name: `refl_g${suffix}` }, alice.token)).group.member_count, 1);
  t.is((await unary(chat, "JoinGroup", { name: `refl_g${suffix}` }, bob.token)).group.member_count, 2);
  t.true((await unary(chat, "ListGroups", { query: `refl_g${suffix}`, mine: false }, bob.token)).groups.length === 1);
  t.is((await unary(chat, "LeaveGroup", { name: `refl_g${suffix}` }, bob.token)).group.member_count, 1);
  t.true((await unary(chat, "ListOnlineUsers", {}, bob.token)).usernames.includes(`refl_b${suffix}`));

  // Connect: hello, then a ping answered by a pong.
  const connect = (chat.Connect as any)(metadata);
  const connectFrames: any[] = [];
  const pong = new Promise<void>((resolve) =>
    connect.on("data", (frame: any) => {
      connectFrames.push(frame);
      if (frame.pong) resolve();
    }),
  );
  connect.on("error", () => undefined);
  connect.write({ hello: { cursors: [] } });
  connect.write({ ping: { nonce: "n-1" } });
  await pong;
  t.is(connectFrames[0].ready.user.username, `refl_b${suffix}`);
  t.is(connectFrames.find((f) => f.pong).pong.nonce, "n-1");
  connect.cancel();

  t.is(frames[0].ready.pod, "test-pod");
  t.true(frames.some((f) => f.message?.body === "hi from reflection"));
  subscription.cancel();

  // protobufjs reads a map field from a descriptor as its repeated entry messages; on the wire it is the same.
  const ref = { name: "chat", namespace: "default", scalerMetadata: [{ key: "usersPerReplica", value: "3" }] };
  const spec = await unary(scaler, "GetMetricSpec", ref);
  t.deepEqual(spec.metricSpecs[0], { metricName: "online_users", targetSize: 3, targetSizeFloat: 3 });
  const metrics = await unary(scaler, "GetMetrics", { scaledObjectRef: ref, metricName: "online_users" });
  t.is(metrics.metricValues[0].metricName, "online_users");
  t.is(typeof (await unary(scaler, "IsActive", ref)).result, "boolean");
  const active = (scaler.StreamIsActive as any)(ref);
  const first = await new Promise<any>((resolve) => active.once("data", resolve));
  t.is(typeof first.result, "boolean");
  active.cancel();
  active.on("error", () => undefined);

  t.is((await unary(health, "Check", { service: "parley.chat.v1.ChatService" })).status, "SERVING");
  await unary(auth, "LogOut", {}, login.token);
  for (const c of [auth, chat, scaler, health]) c.close();
});
