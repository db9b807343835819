// The bundled controller's /metrics, scraped over HTTP while it sizes a
// Deployment served by the local scale API server (test/helpers/scale-api.ts),
// as in test/controller.test.ts: the replicas gauges and the decisions move
// with each tick, the errors with each failed call; and `npm run controller`
// serves them on METRICS_PORT.
import anyTest, { type TestFn } from "ava";
import { freePort } from "../scripts/local-services.js";
import { ControllerMetrics } from "../services/controller/metrics.js";
import { startMetricsServer } from "../services/lib/metrics-server.js";
import { eventually } from "./helpers/clients.js";
import { DEPLOYMENT, goOnline, kedaClient, NAMESPACE, spawnController, startController } from "./helpers/controller.js";
import { freshDatabase, scratchDir } from "./helpers/infra.js";
import { scrape, type Scrape } from "./helpers/metrics.js";
import { LocalScaleApiServer } from "./helpers/scale-api.js";
import { startServer, type InProcessServer } from "./helpers/servers.js";
import { pino } from "pino";

const test = anyTest as TestFn<{ server: InProcessServer; keda: ReturnType<typeof kedaClient> }>;

test.before(async (t) => {
  const server = await startServer({ DATABASE_URL: await freshDatabase(), REDIS_URL: undefined });
  t.context = { server, keda: kedaClient(server.address) };
});
test.after.always(async (t) => {
  t.context.keda?.close();
  await t.context.server?.shutdown();
});

async function scaleApi(t: { teardown(fn: () => unknown): void }, replicas: number): Promise<LocalScaleApiServer> {
  const api = await LocalScaleApiServer.start({ namespace: NAMESPACE, name: DEPLOYMENT, replicas, dir: scratchDir("kube") });
  t.teardown(() => api.stop());
  return api;
}

const decisions = (s: Scrape) =>
  Object.fromEntries(
    ["scale_up", "scale_down", "stabilised", "unchanged", "dry_run"].map((r) => [r, s.count("parley_controller_decisions_total", { reason: r })]),
  );

test.serial("decisions and the replicas gauges follow each tick: up, unchanged, held, down; API errors count", async (t) => {
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
  const metrics = new ControllerMetrics({ defaults: false });
  const http = await startMetricsServer({ port: 0, registry: metrics.registry, log: pino({ level: "silent" }) });
  t.teardown(() => http.close());
  const url = `http://127.0.0.1:${http.port}/metrics`;

  const before = await scrape(url);
  t.is(before.value("parley_controller_desired_replicas"), undefined, "nothing known before the first tick");
  t.deepEqual(decisions(before), { scale_up: 0, scale_down: 0, stabilised: 0, unchanged: 0, dry_run: 0 });

  const controller = startController(api, { SCALER_ADDRESS: server.address, SCALE_DOWN_STABILIZATION_SECONDS: "3" }, { metrics });
  t.teardown(() => controller.stop());
  await controller.idle();
  const up = await scrape(url);
  t.is(up.value("parley_controller_desired_replicas"), 3);
  t.is(up.value("parley_controller_current_replicas"), 3, "as patched");
  t.deepEqual(decisions(up), { scale_up: 1, scale_down: 0, stabilised: 0, unchanged: 0, dry_run: 0 });

  await controller.tick();
  t.like(decisions(await scrape(url)), { scale_up: 1, unchanged: 1 });

  leaving.close();
  await keda.waitForUsers(3);
  await controller.tick(2);
  const held = await scrape(url);
  t.like(decisions(held), { stabilised: 2, scale_down: 0 });
  t.is(held.value("parley_controller_desired_replicas"), 3, "held at the window's highest");

  await controller.tick();
  const down = await scrape(url);
  t.like(decisions(down), { scale_up: 1, scale_down: 1 });
  t.is(down.value("parley_controller_desired_replicas"), 1);
  t.is(down.value("parley_controller_current_replicas"), 1);
  t.is(down.value("parley_controller_kubernetes_errors_total"), 0);

  api.failWith = 503;
  await controller.tick(2);
  const failing = await scrape(url);
  t.is(failing.value("parley_controller_kubernetes_errors_total"), 2, "one refused read per tick");
  t.is(failing.value("parley_controller_scaler_errors_total"), 0);
  t.like(decisions(failing), { unchanged: 1 }, "no decision without the scale");
});

test.serial("DRY_RUN decisions count as dry_run and change no current replicas", async (t) => {
  const { server, keda } = t.context;
  await keda.waitForUsers(0);
  const users = await goOnline(server.address, 7);
  t.teardown(() => users.close());
  await keda.waitForUsers(7);
  const api = await scaleApi(t, 1);
  const metrics = new ControllerMetrics({ defaults: false });
  const http = await startMetricsServer({ port: 0, registry: metrics.registry, log: pino({ level: "silent" }) });
  t.teardown(() => http.close());
  const controller = startController(api, { SCALER_ADDRESS: server.address, DRY_RUN: "true" }, { metrics });
  t.teardown(() => controller.stop());
  await controller.idle();
  await controller.tick(2);
  const s = await scrape(`http://127.0.0.1:${http.port}/metrics`);
  t.like(decisions(s), { dry_run: 3, scale_up: 0 });
  t.is(s.value("parley_controller_desired_replicas"), 3);
  t.is(s.value("parley_controller_current_replicas"), 1);
});

test.serial("`npm run controller` serves its metrics on METRICS_PORT, and a scaler it cannot reach counts", async (t) => {
  const api = await scaleApi(t, 1);
  const port = await freePort();
  const controller = spawnController({
    KUBECONFIG: api.kubeconfig,
    // Nothing listens there: every tick's read of the metric fails.
    SCALER_ADDRESS: `127.0.0.1:${await freePort()}`,
    TARGET_NAMESPACE: NAMESPACE,
    SYNC_INTERVAL_SECONDS: "1",
    METRICS_PORT: String(port),
  });
  t.teardown(() => controller.kill("SIGKILL"));
  const url = `http://127.0.0.1:${port}/metrics`;
  const failing = await eventually(
    () => scrape(url).catch(() => undefined),
    (s) => (s?.value("parley_controller_scaler_errors_total") ?? 0) >= 2,
    30_000,
  ); // real time: the child's clock is its own
  t.is(failing?.value("parley_controller_kubernetes_errors_total"), 0);
  t.true((failing?.value("process_cpu_seconds_total") ?? -1) >= 0, "with the process metrics");
  t.true(
    controller.stdout.some((line) => line.includes('"metrics listening"')),
    controller.stdout.join("\n"),
  );
  controller.kill("SIGTERM");
  t.deepEqual(await controller.exited, { code: 0, signal: null }, controller.stderr.join(""));
});
