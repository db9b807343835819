// The bundled controller as a test drives it: users online on a real Parley
// server, a KEDA-like client of the real scaler, and the controller itself,
// in this process (for its logs, a clean stop, and a fake clock that the test
// moves one tick at a time) or as `npm run controller` (on real time).
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
import type { ControllerMetrics } from "../../services/controller/metrics.js";
import { runController } from "../../services/controller/sync-loop.js";
import type { Clock } from "../../services/lib/clock.js";
import { loadConfig } from "../../services/lib/config.js";
import { connect, eventually, newUser } from "./clients.js";
import { fakeClock, type FakeClock } from "./fake-clock.js";
import type { LocalScaleApiServer } from "./scale-api.js";

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
  /** The controller's clock; it moves only when the test moves it. */
  readonly clock: FakeClock;
  /** Log lines whose message contains `text`. */
  logged(text: string): Array<Record<string, any>>;
  /** Resolves once the tick under way (at start, the first) has finished and the loop waits for the next. */
  idle(): Promise<void>;
  /** Runs `n` more ticks (default 1), one sync interval of clock time apart; resolves when the last has finished. */
  tick(n?: number): Promise<void>;
  /**
   * Ticks until `done()` holds after a tick, pausing `pauseMs` of real time
   * between ticks for what happens outside the clock (a gRPC reconnect);
   * rejects after `maxTicks`. Resolves to the number of ticks run.
   */
  tickUntil(done: () => boolean, options?: { maxTicks?: number; pauseMs?: number }): Promise<number>;
  stop(): Promise<void>;
}

/** Real time a tick may take (its calls' deadlines are 1 s) before a test says the loop is stuck. */
const TICK_TIMEOUT_MS = 15_000;

/**
 * The loop's clock as the test sees it: a fake clock whose timers the loop
 * alone sets, so each timer set is the loop starting its wait after a tick.
 */
function tickClock() {
  const { fake, clock } = fakeClock(Date.now());
  let waits = 0;
  const notify: (() => void)[] = [];
  const loopClock: Clock = {
    ...clock,
    setTimeout(callback, ms) {
      const handle = clock.setTimeout(callback, ms);
      waits += 1;
      for (const wake of notify.splice(0)) wake();
      return handle;
    },
  };
  /** Resolves once the loop has begun `n` waits; rejects if `stopped()` first, or after TICK_TIMEOUT_MS of real time. */
  const waited = async (n: number, stopped: () => boolean) => {
    const deadline = Date.now() + TICK_TIMEOUT_MS;
    while (waits < n) {
      if (stopped()) throw new Error("the controller stopped instead of waiting for its next tick");
      if (Date.now() > deadline) throw new Error(`the controller's tick did not finish in ${TICK_TIMEOUT_MS} ms`);
      await new Promise<void>((resolve) => {
        const recheck = setTimeout(resolve, 50);
        notify.push(() => {
          clearTimeout(recheck);
          resolve();
        });
      });
    }
  };
  return { fake, loopClock, waited };
}

/**
 * Runs the controller in this process against `api`, found through a real
 * kubeconfig file named by KUBECONFIG, on a fake clock; settings default to
 * a 1 s tick and a 3 s stabilisation window. Its first tick runs at once.
 */
export function startController(
  api: LocalScaleApiServer,
  env: Record<string, string>,
  options: { metrics?: ControllerMetrics } = {},
): InProcessController {
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
  const { fake, loopClock, waited } = tickClock();
  let running = true;
  let ticks = 1;
  const done = runController(config, { log, signal: abort.signal, clock: loopClock, metrics: options.metrics }).finally(() => {
    running = false;
  });
  const idle = () => waited(ticks, () => !running);
  const tick = async (n = 1) => {
    for (let i = 0; i < n; i++) {
      await idle();
      ticks += 1;
      fake.tick(config.syncIntervalSeconds * 1000);
      await idle();
    }
  };
  return {
    logs,
    get running() {
      return running;
    },
    clock: fake,
    logged: (text) => logs.filter((line) => String(line.msg).includes(text)),
    idle,
    tick,
    async tickUntil(check, { maxTicks = 30, pauseMs = 100 } = {}) {
      for (let n = 1; n <= maxTicks; n++) {
        await tick();
        if (check()) return n;
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
      throw new Error(`condition not met in ${maxTicks} ticks`);
    },
    async stop() {
      abort.abort();
      await done;
    },
  };
}

/** A Parley server in this process on a fixed port, so it can stop and come back where the controller looks. */
export function startParleyOn(port: number, databaseUrl: string): Promise<Parley> {
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    GRPC_PORT: String(port),
    WEB_PORT: "off",
    METRICS_PORT: "0",
    POD_NAME: "scaler-pod",
    SHUTDOWN_TIMEOUT_SECONDS: "5",
  });
  return startParley(config, pino({ level: "silent" }));
}

const MAIN = fileURLToPath(new URL("../../services/controller/main.ts", import.meta.url));

/** `npm run controller` as its own process: what `tsx services/controller/main.ts` runs. */
export function spawnController(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
    // No metrics server unless the test asks for one on a port of its own (9464 is the default for people).
    env: { ...process.env, LOG_LEVEL: "info", METRICS_PORT: "0", ...env },
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
