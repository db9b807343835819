// The bundled controller end to end: the real scaler in a real Parley server
// reports who is online, and the controller sizes a Deployment served by a
// local HTTP server that speaks the apps/v1 scale API (test/helpers/scale-api.ts),
// reached through a kubeconfig file. Only the controller's clock is fake: a
// test runs it one 1 s tick at a time and looks at what the API server got,
// so the stabilisation window is checked to the tick, and nothing sleeps.
import anyTest, { type TestFn } from "ava";
import { freePort } from "../scripts/local-services.js";
import { eventually } from "./helpers/clients.js";
import { DEPLOYMENT, goOnline, kedaClient, NAMESPACE, spawnController, startController, startParleyOn } from "./helpers/controller.js";
import { freshDatabase, scratchDir } from "./helpers/infra.js";
import { LocalScaleApiServer } from "./helpers/scale-api.js";
import { startServer, type InProcessServer } from "./helpers/servers.js";

const test = anyTest as TestFn<{ server: InProcessServer; keda: ReturnType<typeof kedaClient>; databaseUrl: string }>;

test.before(async (t) => {
  const databaseUrl = await freshDatabase();
  const server = await startServer({ DATABASE_URL: databaseUrl });
  t.context = { server, keda: kedaClient(server.address), databaseUrl };
});
test.after.always(async (t) => {
  t.context.keda?.close();
  await t.context.server?.shutdown();
});

/** A local scale API server holding `replicas`, stopped when the test ends. */
async function scaleApi(t: { teardown(fn: () => unknown): void }, replicas: number): Promise<LocalScaleApiServer> {
  const api = await LocalScaleApiServer.start({ namespace: NAMESPACE, name: DEPLOYMENT, replicas, dir: scratchDir("kube") });
  t.teardown(() => api.stop());
  return api;
}

const replicasOf = (api: LocalScaleApiServer) => api.patches().map((p) => p.body?.spec?.replicas as number);
const SCALE_PATH = `/apis/apps/v1/namespaces/${NAMESPACE}/deployments/${DEPLOYMENT}/scale`;

test.serial("7 users: one merge patch to ceil(7/3) = 3 with its Event, what KEDA would compute, and no writes while nothing changes", async (t) => {
  const { server, keda } = t.context;
  const users = await goOnline(server.address, 7);
  t.teardown(() => users.close());
  await keda.waitForUsers(7);
  const api = await scaleApi(t, 1);
  const controller = startController(api, { SCALER_ADDRESS: server.address });
  t.teardown(() => controller.stop());

  await controller.idle(); // the first tick runs at start
  t.deepEqual(
    api.requests.map((r) => `${r.method} ${r.path}`),
    [`GET ${SCALE_PATH}`, `PATCH ${SCALE_PATH}`, `POST /apis/events.k8s.io/v1/namespaces/${NAMESPACE}/events`],
  );
  const [patch] = api.patches();
  t.is(patch.contentType, "application/merge-patch+json");
  t.deepEqual(patch.body, { spec: { replicas: 3 } });
  t.is(api.replicas, 3);
  const [event] = api.events();
  t.is(event.status, 201);
  t.like(event.body, {
    type: "Normal",
    reason: "ScaledUp",
    action: "Scale",
    note: "1 → 3: 7 users / 3 per replica → 3",
    regarding: { apiVersion: "apps/v1", kind: "Deployment", name: DEPLOYMENT, namespace: NAMESPACE },
    reportingController: "parley/controller",
    reportingInstance: "controller-test",
  });
  t.like(controller.logged("scaling 1 → 3")[0], { users: 7, target: 3, reason: "7 users / 3 per replica → 3" });

  // A KEDA-like client asking the same scaler gets the same answer.
  const spec = await keda.spec(3);
  t.deepEqual(spec.metricSpecs, [{ metricName: "online_users", targetSize: 3, targetSizeFloat: 3 }]);
  const metrics = await keda.metrics(3);
  t.like(metrics.metricValues[0], { metricValue: 7, metricValueFloat: 7 });
  t.is(Math.ceil(metrics.metricValues[0].metricValue / spec.metricSpecs[0].targetSize), api.replicas);

  // Steady state: each tick reads the scale, and writes nothing.
  await controller.tick(3);
  t.is(api.gets().length, 4, "one read per tick");
  t.deepEqual(replicasOf(api), [3]);
  t.is(api.events().length, 1);
  const steady = controller.logs.filter((l) => l.msg === "decision: no write");
  t.deepEqual(
    steady.map((l) => l.reason),
    Array(3).fill("7 users / 3 per replica → 3; no change"),
  );
  t.true(controller.running);
});

test.serial("when users leave it holds through the stabilisation window, then scales down once, to the tick", async (t) => {
  const { server, keda } = t.context;
  await keda.waitForUsers(0);
  const staying = await goOnline(server.address, 3);
  const leaving = await goOnline(server.address, 4);
  t.teardown(() => {
    staying.close();
    leaving.close();
  });
  await keda.waitForUsers(7);
  const api = await scaleApi(t, 1);
  const controller = startController(api, { SCALER_ADDRESS: server.address, SCALE_DOWN_STABILIZATION_SECONDS: "4" });
  t.teardown(() => controller.stop());
  await controller.idle();
  t.deepEqual(replicasOf(api), [3]);
  await controller.tick(); // the last tick that sees 7 users: the window runs from it

  leaving.close();
  await keda.waitForUsers(3);
  const before = api.requests.length;
  await controller.tick(3); // 1, 2 and 3 s after it: inside the 4 s window
  t.deepEqual(
    api.requests.slice(before).map((r) => r.method),
    ["GET", "GET", "GET"],
    "it kept reading while it held, and wrote nothing",
  );
  const holds = controller.logs.filter((l) => l.action === "hold");
  t.is(holds.length, 3);
  t.is(holds[0].reason, "3 users / 3 per replica → 1; holding at 3: highest desired in the last 4s");

  await controller.tick(); // 4 s after it: the 7 users' desire has left the window
  t.deepEqual(replicasOf(api), [3, 1], "one patch up, one patch down, nothing in between");
  t.is(api.events().length, 2);
  t.like(api.events()[1].body, { reason: "ScaledDown", note: "3 → 1: 3 users / 3 per replica → 1" });
});

test.serial("with 1 user per replica and the default MAX_REPLICAS, 12 users clamp at 10", async (t) => {
  const { server, keda } = t.context;
  await keda.waitForUsers(0);
  const users = await goOnline(server.address, 12);
  t.teardown(() => users.close());
  await keda.waitForUsers(12);
  const api = await scaleApi(t, 1);
  const controller = startController(api, { SCALER_ADDRESS: server.address, USERS_PER_REPLICA: "1" });
  t.teardown(() => controller.stop());

  await controller.idle();
  t.deepEqual(replicasOf(api), [10]);
  t.is(api.events().length, 1);
  t.like(api.events()[0].body, { reason: "ScaledUp", note: "1 → 10: 12 users / 1 per replica → 12, clamped to max 10" });
  t.like((await keda.spec(1)).metricSpecs[0], { targetSize: 1, targetSizeFloat: 1 });
  await controller.tick(2);
  t.deepEqual(replicasOf(api), [10]);
  t.is(api.events().length, 1);
});

test.serial("DRY_RUN logs what it would do and writes nothing", async (t) => {
  const { server, keda } = t.context;
  await keda.waitForUsers(0);
  const users = await goOnline(server.address, 7);
  t.teardown(() => users.close());
  await keda.waitForUsers(7);
  const api = await scaleApi(t, 1);
  const controller = startController(api, { SCALER_ADDRESS: server.address, DRY_RUN: "true" });
  t.teardown(() => controller.stop());

  await controller.idle();
  await controller.tick(3);
  t.is(api.gets().length, 4);
  t.deepEqual(api.patches(), []);
  t.deepEqual(api.events(), []);
  t.is(api.replicas, 1);
  const wouldDo = controller.logged("dry run: would scale 1 → 3");
  t.is(wouldDo.length, 4, "every tick still decides");
  t.like(wouldDo[0], { level: 30, dryRun: true, replicas: 3, reason: "7 users / 3 per replica → 3" });
  t.deepEqual(
    wouldDo.slice(1).map((l) => l.level),
    [20, 20, 20],
    "a repeated decision is logged at debug",
  );
});

test.serial("an API server that fails or goes away is waited out, and the controller resumes", async (t) => {
  const { server, keda } = t.context;
  await keda.waitForUsers(0);
  const first = await goOnline(server.address, 7);
  t.teardown(() => first.close());
  await keda.waitForUsers(7);
  const api = await scaleApi(t, 1);
  const controller = startController(api, { SCALER_ADDRESS: server.address });
  t.teardown(() => controller.stop());
  await controller.idle();
  t.is(api.replicas, 3);

  api.failWith = 503;
  await controller.tick(2);
  t.is(api.requests.filter((r) => r.status === 503).length, 2, "one refused read per tick, and nothing more");
  api.failWith = undefined;

  await api.stop();
  const more = await goOnline(server.address, 3);
  t.teardown(() => more.close());
  await keda.waitForUsers(10);
  const errorsBefore = controller.logged("could not read the scale").length;
  t.is(errorsBefore, 1, "two refused reads in a row: the first is logged, the second is not");
  await controller.tick(2);
  const errors = controller.logged("could not read the scale");
  t.is(errors.length, errorsBefore + 1, "a new kind of failure (no answer instead of 503) is logged at once, its repeat is not");
  t.is(errors.at(-1)?.repeated, 3);
  t.true(controller.running, "the controller did not crash");

  await api.listen();
  await controller.tick();
  t.deepEqual(replicasOf(api), [3, 4], "no scale-down at any point; the pending scale-up lands on the first tick after the outage");
  t.is(api.events().length, 2);
  t.like(controller.logged("API server reachable again"), [{ failures: 4 }]);
});

test.serial("a scaler on a closed port is waited out without touching the Deployment; once it answers, the window still applies", async (t) => {
  const port = await freePort();
  const api = await scaleApi(t, 5);
  const controller = startController(api, { SCALER_ADDRESS: `127.0.0.1:${port}`, SCALE_DOWN_STABILIZATION_SECONDS: "2" });
  t.teardown(() => controller.stop());
  await controller.idle();
  await controller.tick(2);
  t.deepEqual(api.requests, [], "no read of the scale and no write while the metric is unknown");
  t.deepEqual(
    controller.logged("metric unavailable; keeping the current replicas").map((l) => [l.level, l.repeated]),
    [
      [40, undefined],
      [40, 3],
    ],
    "three failed ticks, two lines: the first, and the third with the count",
  );
  t.true(controller.running);

  const scaler = await startParleyOn(port, t.context.databaseUrl);
  t.teardown(() => scaler.shutdown());
  // The scaler client reconnects on real time; each tick until then fails like the ones before.
  await controller.tickUntil(() => controller.logged("metric readable again").length > 0, { pauseMs: 200, maxTicks: 50 });
  t.is(controller.logged("metric readable again").length, 1);
  t.is(api.gets().length, 1, "the first readable tick read the scale: 5 replicas, 0 users");
  await controller.tick();
  t.deepEqual(api.patches(), [], "a fresh controller holds a window (2 s) before its first scale-down");
  await controller.tick();
  t.deepEqual(replicasOf(api), [1]);
});

test.serial("a scaler that is down longer than the window, then restarts, never causes a scale-down", async (t) => {
  const port = await freePort();
  let scaler = await startParleyOn(port, t.context.databaseUrl);
  t.teardown(() => scaler.shutdown());
  const address = `127.0.0.1:${port}`;
  const keda = kedaClient(address);
  t.teardown(() => keda.close());
  const users = await goOnline(address, 7);
  t.teardown(() => users.close());
  await keda.waitForUsers(7);
  const api = await scaleApi(t, 1);
  const controller = startController(api, { SCALER_ADDRESS: address, SCALE_DOWN_STABILIZATION_SECONDS: "10" });
  t.teardown(() => controller.stop());
  await controller.idle();
  t.deepEqual(replicasOf(api), [3]);

  await scaler.shutdown();
  await controller.tick(12); // 12 s without a metric: the 7 users' desire has left the 10 s window
  t.deepEqual(
    controller.logged("metric unavailable").map((l) => l.repeated),
    [undefined, 3, 7],
    "12 failed ticks, three lines: the 1st, 3rd and 7th, not one per tick",
  );
  t.deepEqual(replicasOf(api), [3], "no write while the scaler is down");

  scaler = await startParleyOn(port, t.context.databaseUrl);
  await keda.waitForUsers(7); // the clients reconnect by themselves
  await controller.tickUntil(() => controller.logged("metric readable again").length > 0, { pauseMs: 200, maxTicks: 50 });
  const [recovered] = controller.logged("metric readable again");
  t.true(recovered.failures >= 12 && recovered.downSeconds >= 12, JSON.stringify(recovered));
  await controller.tick(2);
  t.deepEqual(replicasOf(api), [3]);
  t.true(controller.running);
});

test.serial("`npm run controller` scales through KUBECONFIG and exits cleanly on SIGTERM", async (t) => {
  const { server, keda } = t.context;
  await keda.waitForUsers(0);
  const users = await goOnline(server.address, 4);
  t.teardown(() => users.close());
  await keda.waitForUsers(4);
  const api = await scaleApi(t, 1);
  const controller = spawnController({
    KUBECONFIG: api.kubeconfig,
    SCALER_ADDRESS: server.address,
    TARGET_NAMESPACE: NAMESPACE,
    SYNC_INTERVAL_SECONDS: "1",
  });
  t.teardown(() => controller.kill("SIGKILL"));

  await eventually(
    async () => api.events().length,
    (n) => n === 1,
    20_000,
  ); // real time: this process's clock is its own
  t.deepEqual(replicasOf(api), [2]);
  controller.kill("SIGTERM");
  const exit = await controller.exited;
  t.deepEqual(exit, { code: 0, signal: null }, controller.stderr.join(""));
  const lines = controller.stdout.map((line) => JSON.parse(line) as Record<string, unknown>);
  t.like(
    lines.find((l) => l.msg === "scaling 1 → 2"),
    { component: "controller", reason: "4 users / 3 per replica → 2" },
  );
  t.truthy(lines.find((l) => l.msg === "controller stopped"));
});
