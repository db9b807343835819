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
}

/**
 * Starts Parley in this process on a free port. It logs nowhere (or at
 * TEST_LOG_LEVEL) unless `options.log` is given: a test that asserts on the
 * log passes a pino logger writing to a sink of its own.
 */
export async function startServer(env: Env, options: { log?: Logger } = {}): Promise<InProcessServer> {
  const config = loadConfig({ POD_NAME: "test-pod", ...env, GRPC_PORT: "0" });
  const log = options.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const parley = await startParley(config, log);
  return { ...parley, address: `127.0.0.1:${parley.port}` };
}

const MAIN = fileURLToPath(new URL("../../services/main.ts", import.meta.url));

export interface ChildServer {
  address: string;
  port: number;
  pod: string;
  process: ChildProcess;
  /** Everything the process logged, one JSON line each. */
  logs: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts Parley as its own process (a pod), and resolves once it listens. */
export async function spawnServer(env: Env, port = 0): Promise<ChildServer> {
  const pod = env.POD_NAME ?? `pod-${Math.random().toString(36).slice(2, 8)}`;
  const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
    env: { ...process.env, LOG_LEVEL: "info", ...env, POD_NAME: pod, GRPC_PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  let buffered = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const listening = new Promise<number>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        logs.push(line);
        if (line.includes('"gRPC server listening"')) resolve(JSON.parse(line).port as number);
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => logs.push(chunk.toString()));
    void exited.then(({ code }) => reject(new Error(`server exited (${code}) before listening:\n${logs.join("\n")}`)));
  });
  const bound = await listening;
  return {
    address: `127.0.0.1:${bound}`,
    port: bound,
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
