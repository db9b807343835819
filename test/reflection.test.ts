// What grpcurl does, on a strict runtime that is not protobufjs: discover every
// service through server reflection alone (no .proto files on the client
// side), load every served file into @bufbuild/protobuf's file registry (which,
// like Go's protobuf and upb, throws on an import that is not served or a type
// that no import defines), then call every rpc with types from that registry.
import { loadFileDescriptorSetFromBuffer } from "@grpc/proto-loader";
import { status, type ServiceError } from "@grpc/grpc-js";
import { toBinary, create, type DescMethod, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import anyTest, { type TestFn } from "ava";
import { freshDatabase } from "./helpers/infra.js";
import { bufBuild, decodeFile, DynamicClient, ReflectionClient } from "./helpers/reflection-client.js";
import { startServer, type InProcessServer } from "./helpers/servers.js";

interface Context {
  server: InProcessServer;
  reflection: ReflectionClient;
  services: string[];
  files: Map<string, Uint8Array>;
  registry: FileRegistry;
}
const test = anyTest as TestFn<Context>;

const SERVICES = [
  "parley.auth.v1.AuthService",
  "parley.chat.v1.ChatService",
  "parley.ops.v1.OpsService",
  "externalscaler.ExternalScaler",
  "grpc.health.v1.Health",
];
const HEALTH_FILE = "grpc/health/v1/health.proto";

test.before(async (t) => {
  t.context.server = await startServer({ DATABASE_URL: await freshDatabase() });
  t.context.reflection = new ReflectionClient(t.context.server.address);
  Object.assign(t.context, await t.context.reflection.discover());
});
test.after.always(async (t) => {
  t.context.reflection?.close();
  await t.context.server?.shutdown();
});

test("reflection lists every service (grpcurl list)", (t) => {
  for (const name of SERVICES) t.true(t.context.services.includes(name), `${name} in ${t.context.services.join(", ")}`);
});

test("reflection serves, byte for byte, the files buf builds from proto/, under their real names", (t) => {
  const built = bufBuild(".");
  t.deepEqual([...t.context.files.keys()].sort(), [...built.keys(), HEALTH_FILE].sort());
  for (const [name, bytes] of built) t.true(Buffer.from(t.context.files.get(name)!).equals(bytes), `${name} is buf's`);
  t.deepEqual(decodeFile(t.context.files.get("parley/chat/v1/chat.proto")!).dependency, [
    "google/protobuf/timestamp.proto",
    "parley/auth/v1/auth.proto",
  ]);
});

test("the strict registry resolves imported types and map fields as protoc declares them", (t) => {
  const { registry } = t.context;
  t.is(registry.getMessage("parley.chat.v1.Message")?.fields.find((f) => f.name === "sent_at")?.message?.typeName, "google.protobuf.Timestamp");
  const metadata = registry.getMessage("externalscaler.ScaledObjectRef")?.fields.find((f) => f.name === "scalerMetadata");
  t.is(metadata?.fieldKind, "map");
  // Go's protobuf (grpcurl) also insists on protoc's name for the entry message.
  t.is(metadata?.proto.typeName, ".externalscaler.ScaledObjectRef.ScalerMetadataEntry");
  const statuses = registry.getMessage("grpc.health.v1.HealthListResponse")?.fields.find((f) => f.name === "statuses");
  t.is(statuses?.fieldKind, "map");
  t.is(statuses?.proto.typeName, ".grpc.health.v1.HealthListResponse.StatusesEntry");
});

test("v1alpha reflection (older grpcurl) serves the same bytes, and unknown names are NOT_FOUND in-band", async (t) => {
  const alpha = new ReflectionClient(t.context.server.address, "v1alpha");
  try {
    t.deepEqual((await alpha.ask({ listServices: "" })).services.sort(), [...t.context.services].sort());
    for (const [name, bytes] of t.context.files) {
      const answer = await alpha.ask({ fileByFilename: name });
      t.true(Buffer.from(answer.files[0]).equals(bytes), `${name} over v1alpha`);
    }
    const method = await alpha.ask({ fileContainingSymbol: "parley.chat.v1.ChatService.Send" });
    t.is(decodeFile(method.files[0]).name, "parley/chat/v1/chat.proto");
    t.is((await t.context.reflection.ask({ fileByFilename: "parley_chat_v1.proto" })).error?.code, status.NOT_FOUND);
    t.is((await t.context.reflection.ask({ fileContainingSymbol: "parley.chat.v1.Nope" })).error?.code, status.NOT_FOUND);
  } finally {
    alpha.close();
  }
});

test("a protobufjs client (proto-loader) still loads the served files", (t) => {
  const set = create(FileDescriptorSetSchema, { file: [...t.context.files.values()].map(decodeFile) });
  const definition = loadFileDescriptorSetFromBuffer(Buffer.from(toBinary(FileDescriptorSetSchema, set)));
  for (const name of SERVICES) t.truthy(definition[name], name);
});

test("every rpc answers a client that knows only what reflection told it", async (t) => {
  const { registry, server } = t.context;
  const called = new Set<DescMethod>();
  const rpc = (service: string, name: string): DescMethod => {
    const method = registry.getService(service)?.methods.find((m) => m.name === name);
    if (!method) throw new Error(`${service}/${name} is not described by reflection`);
    called.add(method);
    return method;
  };
  const auth = (name: string) => rpc("parley.auth.v1.AuthService", name);
  const chat = (name: string) => rpc("parley.chat.v1.ChatService", name);
  const scaler = (name: string) => rpc("externalscaler.ExternalScaler", name);
  const health = (name: string) => rpc("grpc.health.v1.Health", name);
  const ops = (name: string) => rpc("parley.ops.v1.OpsService", name);
  const c = new DynamicClient(server.address);
  const suffix = Math.random().toString(36).slice(2, 8);
  const [ana, ben] = [`refl_a${suffix}`, `refl_b${suffix}`];

  try {
    const alice = await c.unary(auth("SignUp"), { username: ana, password: "correct-horse" });
    t.is(alice.user.username, ana);
    t.regex(alice.expiresAt, /^\d{4}-\d\d-\d\dT/); // a google.protobuf.Timestamp, in its JSON form
    const bob = await c.unary(auth("SignUp"), { username: ben, password: "correct-horse" });
    const login = await c.unary(auth("LogIn"), { username: ana, password: "correct-horse" });
    t.truthy(login.token);
    t.is((await c.unary(auth("WhoAmI"), {}, alice.token)).user.username, ana);

    // Subscribe first, so the DM below arrives live.
    const frames: any[] = [];
    const subscription = c.serverStream(chat("Subscribe"), { cursors: [] }, bob.token);
    subscription.on("error", () => undefined);
    const live = new Promise<void>((resolve) =>
      subscription.on("data", (frame: any) => {
        frames.push(frame);
        if (frame.message) resolve();
      }),
    );
    await new Promise<void>((resolve) => subscription.once("data", () => resolve()));

    const sent = await c.unary(chat("Send"), { clientMsgId: "r1", to: { username: ben }, body: "hi from reflection" }, alice.token);
    t.is(sent.message.seq, "1"); // int64 in proto JSON
    t.regex(sent.message.sentAt, /^\d{4}-\d\d-\d\dT/);
    await live;
    t.is(frames[0].ready.pod, "test-pod");
    t.is(frames.find((f) => f.message).message.body, "hi from reflection");
    subscription.cancel();

    const conversationId = sent.message.conversationId;
    const history = await c.unary(chat("GetHistory"), { conversationId, beforeSeq: "0", limit: 10 }, bob.token);
    t.deepEqual(
      history.messages.map((m: any) => m.body),
      ["hi from reflection"],
    );
    const inbox = await c.unary(chat("ListConversations"), {}, bob.token);
    t.true(inbox.conversations.some((x: any) => x.title === ana && x.unread === "1"));
    t.is((await c.unary(chat("MarkRead"), { conversationId, seq: "1" }, bob.token)).lastReadSeq, "1");
    t.is((await c.unary(chat("CreateGroup"), { name: `refl_g${suffix}` }, alice.token)).group.memberCount, "1");
    t.is((await c.unary(chat("JoinGroup"), { name: `refl_g${suffix}` }, bob.token)).group.memberCount, "2");
    t.is((await c.unary(chat("ListGroups"), { query: `refl_g${suffix}`, mine: false }, bob.token)).groups.length, 1);
    t.is((await c.unary(chat("LeaveGroup"), { name: `refl_g${suffix}` }, bob.token)).group.memberCount, "1");

    // Connect: hello, then a ping answered by a pong; bob is online while it is open.
    const connect = c.bidiStream(chat("Connect"), bob.token);
    connect.on("error", () => undefined);
    const connectFrames: any[] = [];
    const pong = new Promise<void>((resolve) =>
      connect.on("data", (frame: any) => {
        connectFrames.push(frame);
        if (frame.pong) resolve();
      }),
    );
    connect.write({ hello: { cursors: [] } });
    connect.write({ ping: { nonce: "n-1" } });
    await pong;
    t.is(connectFrames[0].ready.user.username, ben);
    t.is(connectFrames.find((f) => f.pong).pong.nonce, "n-1");
    t.true((await c.unary(chat("ListOnlineUsers"), {}, bob.token)).usernames.includes(ben));

    // A real map field, as KEDA sends it.
    const ref = { name: "chat", namespace: "default", scalerMetadata: { usersPerReplica: "3" } };
    const spec = await c.unary(scaler("GetMetricSpec"), ref);
    t.deepEqual(spec.metricSpecs[0], { metricName: "online_users", targetSize: "3", targetSizeFloat: 3 });
    const metrics = await c.unary(scaler("GetMetrics"), { scaledObjectRef: ref, metricName: "online_users" });
    t.is(metrics.metricValues[0].metricName, "online_users");
    t.true(Number(metrics.metricValues[0].metricValue) >= 1);
    t.is((await c.unary(scaler("IsActive"), ref)).result, true);
    // The dashboard's figures need no token; bob's Connect is open, so someone is online.
    const cluster = await c.unary(ops("GetClusterStatus"), {});
    t.true(Number(cluster.onlineUsers) >= 1);
    const active = c.serverStream(scaler("StreamIsActive"), ref);
    active.on("error", () => undefined);
    t.is(typeof (await new Promise<any>((resolve) => active.once("data", resolve))).result, "boolean");
    active.cancel();
    connect.cancel();

    t.is((await c.unary(health("Check"), { service: "parley.chat.v1.ChatService" })).status, "SERVING");
    const watch = c.serverStream(health("Watch"), { service: "parley.auth.v1.AuthService" });
    watch.on("error", () => undefined);
    t.is((await new Promise<any>((resolve) => watch.once("data", resolve))).status, "SERVING");
    watch.cancel();
    const listed = await c.unary(health("List"), {});
    t.deepEqual(listed.statuses["parley.chat.v1.ChatService"], { status: "SERVING" });

    t.deepEqual(await c.unary(auth("LogOut"), {}, login.token), {});

    // Any rpc reflection describes that the flow above does not know yet must
    // still be routed by the server: called empty, it answers anything but UNIMPLEMENTED.
    for (const service of SERVICES.map((name) => registry.getService(name)!)) {
      for (const method of service.methods.filter((m) => !called.has(m))) {
        const code = await probe(c, method, bob.token);
        t.not(code, status.UNIMPLEMENTED, `${service.typeName}/${method.name}`);
      }
    }
  } finally {
    c.close();
  }
});

/** Calls `method` with an empty request and resolves with the status code it ends with (OK once it answers). */
function probe(c: DynamicClient, method: DescMethod, token: string): Promise<number> {
  if (method.methodKind === "unary") {
    return c.unary(method, {}, token).then(
      () => status.OK,
      (err: ServiceError) => err.code,
    );
  }
  const call = method.methodKind === "server_streaming" ? c.serverStream(method, {}, token) : c.bidiStream(method, token);
  return new Promise((resolve) => {
    call.once("data", () => {
      resolve(status.OK);
      call.cancel();
    });
    call.on("error", (err: ServiceError) => resolve(err.code));
    call.on("status", (s: { code: number }) => resolve(s.code));
    if ("end" in call && typeof call.end === "function") call.end();
  });
}
