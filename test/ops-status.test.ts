// OpsService over plain gRPC on the embedded mode (PGlite, memory stores, one
// process): the dashboard's read needs no token and shows this process with
// its streams; RecordScalingDecision refuses what is not a decision with
// INVALID_ARGUMENT naming the field, and lists what is one.
import { credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import anyTest, { type TestFn } from "ava";
import {
  DependencyState,
  type GetClusterStatusResponse,
  OpsServiceClient,
  type RecordScalingDecisionRequest,
  ScalingAction,
} from "../gen/parley/ops/v1/ops.js";
import { connect, eventually, newUser } from "./helpers/clients.js";
import { scratchDir } from "./helpers/infra.js";
import { type InProcessServer, startServer } from "./helpers/servers.js";

const test = anyTest as TestFn<{ server: InProcessServer; ops: OpsServiceClient }>;

test.before(async (t) => {
  t.context.server = await startServer({ DATABASE_URL: undefined, REDIS_URL: undefined, PARLEY_DATA_DIR: scratchDir("ops"), POD_NAME: "solo" });
  t.context.ops = new OpsServiceClient(t.context.server.address, credentials.createInsecure());
});
test.after.always(async (t) => {
  t.context.ops?.close();
  await t.context.server?.shutdown();
});

const getStatus = (ops: OpsServiceClient) =>
  new Promise<GetClusterStatusResponse>((resolve, reject) =>
    ops.getClusterStatus({}, new Metadata(), (err, res) => (err ? reject(err) : resolve(res))),
  );
const record = (ops: OpsServiceClient, request: RecordScalingDecisionRequest) =>
  new Promise<ServiceError | null>((resolve) => ops.recordScalingDecision(request, (err) => resolve(err)));

test.serial("GetClusterStatus needs no token and shows this process, its streams and its dependencies", async (t) => {
  const { server, ops } = t.context;
  const user = await newUser(server.address, "solo");
  const inbox = await connect(user, server.address);
  t.teardown(() => inbox.client.close());
  const seen = await eventually(
    () => getStatus(ops),
    (s) => s.pods[0]?.streams === 1 && s.onlineUsers === 1,
  );
  t.is(seen.pods.length, 1);
  t.like(seen.pods[0], {
    name: "solo",
    services: ["auth", "chat", "scaler"],
    healthy: true,
    draining: false,
    redis: DependencyState.DEPENDENCY_STATE_NOT_USED,
  });
  // PGlite stands for Postgres, and the probe reaches it within a report or two.
  await eventually(
    () => getStatus(ops),
    (s) => s.pods[0]?.postgres === DependencyState.DEPENDENCY_STATE_UP,
  );
  t.like(seen.replicas, { desired: 1, current: 1, usersPerReplica: 3, controller: undefined });
  t.true((seen.pods[0]?.rssBytes ?? 0) > 10 * 2 ** 20);
});

test.serial("RecordScalingDecision refuses what is not a decision, naming the field, and lists what is one", async (t) => {
  const { ops } = t.context;
  const decision = {
    decidedAt: new Date(),
    fromReplicas: 1,
    toReplicas: 2,
    desiredReplicas: 2,
    onlineUsers: 4,
    action: ScalingAction.SCALING_ACTION_UP,
    reason: "4 users / 3 per replica → 2",
    dryRun: true,
  };
  const refusals: [RecordScalingDecisionRequest, RegExp][] = [
    [{ decision: undefined }, /decision is required/],
    [{ decision: { ...decision, action: ScalingAction.SCALING_ACTION_UNSPECIFIED } }, /decision\.action/],
    [{ decision: { ...decision, reason: "  " } }, /decision\.reason/],
    [{ decision: { ...decision, reason: "x".repeat(501) } }, /decision\.reason/],
    [{ decision: { ...decision, toReplicas: -1 } }, /decision\.to_replicas/],
  ];
  for (const [request, message] of refusals) {
    const err = await record(ops, request);
    t.is(err?.code, status.INVALID_ARGUMENT);
    t.regex(err?.details ?? "", message);
  }
  t.deepEqual((await getStatus(ops)).scalingDecisions, [], "nothing refused was kept");

  t.is(await record(ops, { decision }), null);
  const seen = await getStatus(ops);
  t.like(seen.scalingDecisions[0], { fromReplicas: 1, toReplicas: 2, reason: "4 users / 3 per replica → 2", dryRun: true });
  t.like(seen.replicas?.controller, { current: 1, replicas: 2, desired: 2, dryRun: true });
});
