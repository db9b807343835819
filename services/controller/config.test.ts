import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { ControllerConfigError, loadControllerConfig, readOwnNamespace } from "./config.js";

function problemsOf(env: Record<string, string>): string[] {
  const err = (() => {
    try {
      loadControllerConfig(env);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  if (!(err instanceof ControllerConfigError)) throw new Error(`expected a ControllerConfigError for ${JSON.stringify(env)}`);
  return err.problems;
}

test("only SCALER_ADDRESS is needed; the rest are the documented defaults", (t) => {
  t.deepEqual(loadControllerConfig({ SCALER_ADDRESS: "scaler:50051" }), {
    scalerAddress: "scaler:50051",
    targetDeployment: "chat",
    targetNamespace: "default",
    minReplicas: 1,
    maxReplicas: 10,
    usersPerReplica: 3,
    scaleDownStabilizationSeconds: 60,
    syncIntervalSeconds: 5,
    dryRun: false,
    logLevel: "info",
    logFormat: "auto",
    podName: hostname(),
    metricsPort: 9464,
  });
});

test("the namespace defaults to the controller's own", (t) => {
  t.is(loadControllerConfig({ SCALER_ADDRESS: "s:1" }, "parley").targetNamespace, "parley");
  t.is(loadControllerConfig({ SCALER_ADDRESS: "s:1", TARGET_NAMESPACE: "other" }, "parley").targetNamespace, "other");
});

test("readOwnNamespace reads the service account file, and is undefined without one", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "ns-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "namespace"), "parley\n");
  t.is(readOwnNamespace(join(dir, "namespace")), "parley");
  t.is(readOwnNamespace(join(dir, "missing")), undefined);
});

test("every setting is read", (t) => {
  const config = loadControllerConfig({
    SCALER_ADDRESS: "dns:///scaler.parley.svc:50051",
    TARGET_DEPLOYMENT: "chat-v2",
    TARGET_NAMESPACE: "team-a",
    MIN_REPLICAS: "2",
    MAX_REPLICAS: "4",
    USERS_PER_REPLICA: "50",
    SCALE_DOWN_STABILIZATION_SECONDS: "0",
    SYNC_INTERVAL_SECONDS: "1",
    DRY_RUN: "TRUE",
    LOG_LEVEL: "debug",
    LOG_FORMAT: "pretty",
    POD_NAME: "controller-0",
    METRICS_PORT: "9100",
  });
  t.like(config, {
    scalerAddress: "dns:///scaler.parley.svc:50051",
    targetDeployment: "chat-v2",
    targetNamespace: "team-a",
    minReplicas: 2,
    maxReplicas: 4,
    usersPerReplica: 50,
    scaleDownStabilizationSeconds: 0,
    syncIntervalSeconds: 1,
    dryRun: true,
    logLevel: "debug",
    logFormat: "pretty",
    podName: "controller-0",
    metricsPort: 9100,
  });
  t.is(loadControllerConfig({ SCALER_ADDRESS: "scaler:50051", METRICS_PORT: "0" }).metricsPort, undefined);
  t.false(loadControllerConfig({ SCALER_ADDRESS: "[::1]:50051", DRY_RUN: "false" }).dryRun);
});

test("every problem is reported at once, naming its variable", (t) => {
  const problems = problemsOf({
    TARGET_DEPLOYMENT: "Chat_App",
    TARGET_NAMESPACE: "a.b",
    MIN_REPLICAS: "0",
    MAX_REPLICAS: "ten",
    USERS_PER_REPLICA: "-3",
    SCALE_DOWN_STABILIZATION_SECONDS: "1.5",
    SYNC_INTERVAL_SECONDS: "0",
    DRY_RUN: "perhaps",
    LOG_LEVEL: "loud",
    LOG_FORMAT: "plain",
    METRICS_PORT: "-1",
  });
  const named = problems.map((p) => p.split(" ")[0]).sort();
  t.deepEqual(named, [
    "DRY_RUN",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "MAX_REPLICAS",
    "METRICS_PORT",
    "MIN_REPLICAS",
    "SCALER_ADDRESS",
    "SCALE_DOWN_STABILIZATION_SECONDS",
    "SYNC_INTERVAL_SECONDS",
    "TARGET_DEPLOYMENT",
    "TARGET_NAMESPACE",
    "USERS_PER_REPLICA",
  ]);
});

test("min above max and a malformed address are refused", (t) => {
  t.deepEqual(problemsOf({ SCALER_ADDRESS: "scaler", MIN_REPLICAS: "5", MAX_REPLICAS: "3" }), [
    'SCALER_ADDRESS must be host:port, got "scaler"',
    "MIN_REPLICAS (5) must not exceed MAX_REPLICAS (3)",
  ]);
});
