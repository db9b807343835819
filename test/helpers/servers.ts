// Parley servers for tests: in this process (fast, for one-node tests) or as
// child processes (for several pods, restarts and signals).
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { pino, type Logger } from "pino";
import { startParley, type Parley } from "../../services/app.js";
import { loadConfig } from "../../services/lib/config.js";

export type Env = Record<string, string | undefined>;

/** Settings that lift the per-user rate limit, for tests that send in bulk and must not be refused for it. */
export const NO_RATE_LIMIT: Env = { RATE_LIMIT_PER_SECOND: "100000", RATE_LIMIT_BURST: "100000" };

export interface InProcessServer extends Parley {
  address: string;
  /** `http://127.0.0.1:<port>` of the web server (the app and gRPC-web), or undefined when WEB_PORT is off. */
  webUrl: string | undefined;
}

/**
 * Tests never bind the default WEB_PORT (8080): the web server is off unless
 * a test asks for it with WEB_PORT "0" (a free port) or a port of its own.
 */
function testWebPort(env: Env): string {
  const port = env.WEB_PORT ?? "off";
  if (port === "8080") throw new Error('tests must not bind WEB_PORT 8080 (the default for people); pass WEB_PORT: "0"');
  return port;
}

/**
 * Nor the default METRICS_PORT (9464): the metrics server is off ("0") unless
 * a test passes a port of its own (freePort() from scripts/local-services.ts).
 */
function testMetricsPort(env: Env): string {
  const port = env.METRICS_PORT ?? "0";
  if (port === "9464") throw new Error("tests must not bind METRICS_PORT 9464 (the default for people); pass a free port");
  return port;
}

function webUrlOf(port: number | undefined): string | undefined {
  return port === undefined ? undefined : `http://127.0.0.1:${port}`;
}

/**
 * Starts Parley in this process on a free port, with its web server only
 * when `env.WEB_PORT` asks for one ("0": a free port). It logs nowhere (or at
 * TEST_LOG_LEVEL) unless `options.log` is given: a test that asserts on the
 * log passes a pino logger writing to a sink of its own.
 */
export async function startServer(env: Env, options: { log?: Logger } = {}): Promise<InProcessServer> {
  const config = loadConfig({ POD_NAME: "test-pod", ...env, GRPC_PORT: "0", WEB_PORT: testWebPort(env), METRICS_PORT: testMetricsPort(env) });
  const log = options.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const parley = await startParley(config, log);
  return { ...parley, address: `127.0.0.1:${parley.port}`, webUrl: webUrlOf(parley.webPort) };
}

const MAIN = fileURLToPath(new URL("../../services/main.ts", import.meta.url));

export interface ChildServer {
  address: string;
  port: number;
  /** The web server's port and URL; undefined when WEB_PORT is off (the default in tests). */
  webPort: number | undefined;
  webUrl: string | undefined;
  pod: string;
  process: ChildProcess;
  /** Everything the process logged, one JSON line each. */
  logs: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

/**
 * Starts Parley as its own process (a pod), and resolves once it listens: on
 * gRPC, and on the web when `env.WEB_PORT` asks for a web server (pass a port
 * of your own to keep the same URL across a restart).
 */
export async function spawnServer(env: Env, port = 0): Promise<ChildServer> {
  const pod = env.POD_NAME ?? `pod-${Math.random().toString(36).slice(2, 8)}`;
  const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
    env: {
      ...process.env,
      LOG_LEVEL: "info",
      ...env,
      POD_NAME: pod,
      GRPC_PORT: String(port),
      WEB_PORT: testWebPort(env),
      METRICS_PORT: testMetricsPort(env),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  let buffered = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const withWeb = testWebPort(env).toLowerCase() !== "off";
  let grpcPort: number | undefined;
  let webPort: number | undefined;
  const listening = new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        logs.push(line);
        if (line.includes('"gRPC server listening"')) grpcPort = JSON.parse(line).port as number;
        if (line.includes('"web server listening"')) webPort = JSON.parse(line).port as number;
        if (grpcPort !== undefined && (!withWeb || webPort !== undefined)) resolve();
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => logs.push(chunk.toString()));
    void exited.then(({ code }) => reject(new Error(`server exited (${code}) before listening:\n${logs.join("\n")}`)));
  });
  await listening;
  const bound = grpcPort as number;
  return {
    address: `127.0.0.1:${bound}`,
    port: bound,
    webPort,
    webUrl: webUrlOf(webPort),
    pod,
    process: child,
    logs,
    exited,
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/**
 * Stops a pod the way Kubernetes does: SIGTERM, so that it drains, and SIGKILL
 * if it is still running after `killAfterMs`; resolves once it has exited. For
 * cleanups, which must end even when a test left the pod stuck.
 */
export async function stopPod(pod: ChildServer, killAfterMs = 25_000): Promise<void> {
  pod.kill("SIGTERM");
  const timer = setTimeout(() => pod.kill("SIGKILL"), killAfterMs);
  await pod.exited;
  clearTimeout(timer);
}

/**
 * Awaits servers started together, like Promise.all; but when one of them
 * fails to start, the ones that did are stopped (`stop`) before the failure is
 * thrown, so that a failed hook leaves no server holding the test's process
 * open (ava then reports the failure, not a timeout).
 */
export async function startedTogether<T>(starts: readonly Promise<T>[], stop: (server: T) => Promise<unknown>): Promise<T[]> {
  const settled = await Promise.allSettled(starts);
  const failure = settled.find((result) => result.status === "rejected");
  if (failure === undefined) return settled.map((result) => (result as PromiseFulfilledResult<T>).value);
  await Promise.all(settled.map((result) => (result.status === "fulfilled" ? stop(result.value).catch(() => undefined) : undefined)));
  throw failure.reason;
}
