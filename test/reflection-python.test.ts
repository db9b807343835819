// A second strict runtime, from Debian: python3-grpcio with python3-protobuf,
// whose C++ descriptor pool (as strict as Go's and upb's) must accept every
// file that reflection serves before test/helpers/reflection-check.py can
// call anything. .ci/run installs both packages.
import { execFile, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import anyTest, { type TestFn } from "ava";
import { freshDatabase } from "./helpers/infra.js";
import { decodeFile, reflectionProtocolFiles } from "./helpers/reflection-client.js";
import { startServer, type InProcessServer } from "./helpers/servers.js";

const test = anyTest as TestFn<{ server: InProcessServer }>;
const PYTHON = "/usr/bin/python3"; // Debian's, where apt puts python3-grpcio (not a pyenv shim)
const CHECK = fileURLToPath(new URL("./helpers/reflection-check.py", import.meta.url));

test.before(async (t) => {
  const probe = spawnSync(PYTHON, ["-c", "import grpc, google.protobuf"], { encoding: "utf8" });
  if (probe.status !== 0)
    throw new Error(`needs Debian's python3-grpcio and python3-protobuf (apt-get install -y python3-grpcio python3-protobuf): ${probe.stderr}`);
  t.context.server = await startServer({ DATABASE_URL: await freshDatabase() });
});
test.after.always(async (t) => {
  await t.context.server?.shutdown();
});

function runCheck(address: string): Promise<any> {
  const v1 = [...reflectionProtocolFiles()].filter(([name]) => name.includes("/v1/")).map(([, bytes]) => decodeFile(bytes));
  const reflection = Buffer.from(toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: v1 }))).toString("base64");
  return new Promise((resolve, reject) => {
    // A failure's message carries the script's stderr (the pool's complaint).
    const child = execFile(PYTHON, [CHECK, address], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout))));
    child.stdin!.end(JSON.stringify({ reflection }));
  });
}

test("Python's C++ protobuf runtime loads every served file and calls every service", async (t) => {
  const seen = await runCheck(t.context.server.address);
  t.not(seen.runtime, "python", "a strict (cpp or upb) descriptor pool, not the pure-Python one");
  t.deepEqual(seen.files, [
    "externalscaler/externalscaler.proto",
    "google/protobuf/timestamp.proto",
    "grpc/health/v1/health.proto",
    "parley/auth/v1/auth.proto",
    "parley/chat/v1/chat.proto",
    "parley/ops/v1/ops.proto",
  ]);
  for (const name of [
    "parley.auth.v1.AuthService",
    "parley.chat.v1.ChatService",
    "parley.ops.v1.OpsService",
    "externalscaler.ExternalScaler",
    "grpc.health.v1.Health",
  ]) {
    t.true(seen.services.includes(name), name);
  }
  const [ana, ben] = seen.users as string[];
  const r = seen.results;
  t.is(r.signUp.user.username, ana);
  t.regex(r.signUp.expiresAt, /^\d{4}-\d\d-\d\dT/);
  t.regex(r.clusterStatus.generatedAt, /^\d{4}-\d\d-\d\dT/);
  t.is(r.whoAmI.user.username, ana);
  t.is(r.subscribe.ready.user.username, ben);
  t.is(r.send.message.seq, "1");
  t.deepEqual(
    r.getHistory.messages.map((m: any) => m.body),
    ["hi from python"],
  );
  t.true(r.listConversations.conversations.some((c: any) => c.title === ana && c.unread === "1"));
  t.deepEqual(r.getMetricSpec.metricSpecs[0], { metricName: "online_users", targetSize: "3", targetSizeFloat: 3 });
  t.is(r.check.status, "SERVING");
  t.deepEqual(r.list.statuses["parley.chat.v1.ChatService"], { status: "SERVING" });
  t.deepEqual(r.logOut, {});
});
