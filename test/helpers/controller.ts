// The bundled controller as a test drives it: users online on a real Parley
// server, a KEDA-like client of the real scaler, and the controller itself,
// in this process (for its logs and a clean stop) or as `npm run controller`.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";
import { pino } from "pino";
import {
  ExternalScalerClient,
  type GetMetricSpecResponse,
  type GetMetricsResponse,
  type ScaledObjectRef,
} from "../../gen/externalscaler/externalscaler.js";
import { startParley, type Parley } from "../../services/app.js";
import { loadControllerConfig } from "../../services/controller/config.js";
import { runController } from "../../services/controller/sync-loop.js";
import { loadConfig } from "../../services/lib/config.js";
import { connect, eventually, newUser } from "./clients.js";
import type { ScaleApi } from "./scale-api.js";

export const NAMESPACE = "parley";
export const DEPLOYMENT = "chat";

/** `n` signed-up users with a live stream each; `close()` takes them offline. */
export async function goOnline(address: string, n: number): Promise<{ close(): void }> {
  const users = await Promise.all(Array.from({ length: n }, () => newUser(address, "c")));
  const inboxes = await Promise.all(users.map((user) => connect(user, address)));
  return {
    close() {
      for (const inbox of inboxes) inbox.client.close();
      for (const user of users) user.api.close();
    },
  };
}

/** What KEDA sends the external scaler: GetMetricSpec, and GetMetrics with its "s0-" prefixed metric name. */
export function kedaClient(address: string) {
  const client = new ExternalScalerClient(address, credentials.createInsecure());
  const ref = (usersPerReplica: number): ScaledObjectRef => ({
    name: DEPLOYMENT,
    namespace: NAMESPACE,
    scalerMetadata: { usersPerReplica: String(usersPerReplica) },
  });
  const spec = (usersPerReplica = 3) =>
    new Promise<GetMetricSpecResponse>((resolve, reject) =>
      client.getMetricSpec(ref(usersPerReplica), (err, res) => (err ? reject(err) : resolve(res))),
    );
  const metrics = (usersPerReplica = 3) =>
    new Promise<GetMetricsResponse>((resolve, reject) =>
      client.getMetrics({ scaledObjectRef: ref(usersPerReplica), metricName: "s0-online_users" }, (err, res) => (err ? reject(err) : resolve(res))),
    );
  const users = async () => (await metrics()).metricValues[0]?.metricValue ?? -1;
  return {
    spec,
    metrics,
    users,
    /** Resolves once the scaler reports exactly `n` users online. */
    waitForUsers: (n: number, timeoutMs = 15_000) => eventually(users, (count) => count === n, timeoutMs),
    close: () => client.close(),
  };
}

export interface InProcessController {
  /** Every line the controller logged, parsed. */
  logs: Array<Record<string, any>>;
  /** False once runController has returned or thrown. */
  readonly running: boolean;
  /** Log lines whose message contains `text`. */
  logged(text: string): Array<Record<string, any>>;
  stop(): Promise<void>;
}

/**
 * Runs the controller in this process against `api`, found through a real
 * kubeconfig file named by KUBECONFIG; settings default to a 1 s tick.
 */
export function startController(api: ScaleApi, env: Record<string, string>): InProcessController {
  process.env.KUBECONFIG = api.kubeconfig; // read by loadFromDefault() before runController's first await
  const config = loadControllerConfig({
    TARGET_NAMESPACE: NAMESPACE,
    TARGET_DEPLOYMENT: DEPLOYMENT,
    SYNC_INTERVAL_SECONDS: "1",
    SCALE_DOWN_STABILIZATION_SECONDS: "3",
    POD_NAME: "controller-test",
    ...env,
  });
  const logs: Array<Record<string, any>> = [];
  const log = pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const abort = new AbortController();
  let running = true;
  const done = runController(config, { log, signal: abort.signal }).finally(() => {
    running = false;
  });
  return {
    logs,
    get running() {
      return running;
    },
    logged: (text) => logs.filter((line) => String(line.msg).includes(text)),
    async stop() {
      abort.abort();
      await done;
    },
  };
}

/** A Parley server in this process on a fixed port, so it can stop and come back where the controller looks. */
export function startParleyOn(port: number, databaseUrl: string): Promise<Parley> {
  const config = loadConfig({ DATABASE_URL: databaseUrl, GRPC_PORT: String(port), POD_NAME: "scaler-pod", SHUTDOWN_TIMEOUT_SECONDS: "5" });
  return startParley(config, pino({ level: "silent" }));
}

const MAIN = fileURLToPath(new URL("../../services/controller/main.ts", import.meta.url));

/** `npm run controller` as its own process: what `tsx services/controller/main.ts` runs. */
export function spawnController(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
    env: { ...process.env, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  let partial = "";
  child.stdout.on("data", (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split("\n");
    partial = lines.pop() ?? "";
    stdout.push(...lines);
  });
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout,
    stderr,
    exited,
    kill(signal: NodeJS.Signals) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
