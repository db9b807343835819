// Starts and stops real Postgres 15 and Redis 7 on free loopback ports in a
// temporary folder, for `npm test` and for trying several pods by hand.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

export const PG_BIN = process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin";

/** A free TCP port on loopback (free when asked; the caller binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function has(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Debian's Chromium, which the browser tests drive with playwright-core
 * (test/helpers/browser.ts). Playwright's own browser download needs the
 * network at test time and its builds are not Debian's, so `npm test` uses
 * the distribution package instead.
 */
export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";

/** Installs redis-server, Postgres 15 and Chromium from Debian when they are missing (root only). */
export function ensureInstalled(log: (line: string) => void): void {
  const missing: string[] = [];
  if (!has("redis-server")) missing.push("redis-server");
  if (!existsSync(join(PG_BIN, "initdb"))) missing.push("postgresql");
  if (!existsSync(CHROMIUM)) missing.push("chromium");
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${missing.join(", ")}: install them (apt-get install -y ${missing.join(" ")})`);
  }
  log(`installing ${missing.join(", ")} with apt-get`);
  execFileSync("sh", ["-c", `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(" ")}`], {
    stdio: "inherit",
  });
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not start within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface LocalPostgres {
  url: string;
  port: number;
  /** Fast shutdown; resolves once the server process is gone. */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same data folder and port. */
  start(): Promise<void>;
}

export interface PostgresOptions {
  /**
   * Production durability: `fsync`, `synchronous_commit` and `full_page_writes`
   * stay on, so a commit is on disk before it returns. Default false: tests run
   * with all three off, which is faster and loses nothing unless the machine crashes.
   */
  durable?: boolean;
}

/** initdb refuses root, so the cluster belongs to the `postgres` user when we are root. */
export async function startPostgres(dir: string, options: PostgresOptions = {}): Promise<LocalPostgres> {
  const durable = options.durable ?? false;
  const data = join(dir, "pg");
  mkdirSync(data, { recursive: true });
  if (asRoot()) {
    chownSync(dir, uidOf("postgres"), gidOf("postgres"));
    chownSync(data, uidOf("postgres"), gidOf("postgres"));
  }
  chmodSync(data, 0o700);
  const [cmd, ...args] = runAsPostgres([join(PG_BIN, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
  execFileSync(cmd, args, { stdio: "ignore" });
  const port = await freePort();
  await launchPostgres(data, port, durable);
  const pidFile = join(data, "postmaster.pid");
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      const pid = readPid(pidFile);
      stopPid(pid, "SIGINT");
      await waitFor("Postgres to stop", () => !isAlive(pid), 30_000);
    },
    start: () => launchPostgres(data, port, durable),
  };
}

/** What tests trade for speed: nothing waits for the disk. */
const FAST_SETTINGS = ["fsync=off", "synchronous_commit=off", "full_page_writes=off"];

async function launchPostgres(data: string, port: number, durable: boolean): Promise<void> {
  const [cmd, ...args] = runAsPostgres([
    join(PG_BIN, "postgres"),
    "-D",
    data,
    "-p",
    String(port),
    "-k",
    data,
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "max_connections=300",
    ...(durable ? [] : FAST_SETTINGS).flatMap((setting) => ["-c", setting]),
  ]);
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
  let output = "";
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  child.unref();
  await waitFor("Postgres", () => output.includes("ready to accept connections") || child.exitCode !== null);
  child.stderr?.destroy();
  if (child.exitCode !== null) throw new Error(`Postgres failed to start:\n${output}`);
}

/**
 * Stops every Postgres whose data folder sits under `dir` (the run's own, and
 * any a crashed test file left) with a fast shutdown, and resolves once they
 * are gone, so that the folder can be removed; one still there after
 * `graceMs` (default 15 s) is killed.
 */
export async function stopAllPostgres(dir: string, graceMs = 15_000): Promise<void> {
  if (!existsSync(dir)) return;
  const pids: number[] = [];
  for (const entry of readdirSync(dir, { recursive: true }) as string[]) {
    const pid = entry.endsWith("postmaster.pid") ? readPid(join(dir, entry)) : undefined;
    if (pid !== undefined) pids.push(pid);
  }
  for (const pid of pids) stopPid(pid, "SIGINT");
  const deadline = Date.now() + graceMs;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids.filter(isAlive)) stopPid(pid, "SIGKILL");
}

const asRoot = () => process.getuid?.() === 0;
const runAsPostgres = (args: string[]) => (asRoot() ? ["runuser", "-u", "postgres", "--", ...args] : args);

function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface LocalRedis {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** A Redis server without persistence; its pid file sits in `dir`, so a crashed test run can still be cleaned up. */
export async function startRedis(dir: string, port?: number): Promise<LocalRedis> {
  mkdirSync(dir, { recursive: true });
  const chosen = port ?? (await freePort());
  const pidFile = join(dir, `redis-${chosen}.pid`);
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(chosen), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--pidfile", pidFile],
    { stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.unref();
  // A process killed by a signal has a signalCode and no exitCode.
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  await waitFor("Redis", () => output.includes("Ready to accept connections") || exited());
  if (exited()) throw new Error(`Redis failed to start:\n${output}`);
  const pid = child.pid as number;
  let stopped: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${chosen}`,
    port: chosen,
    pid,
    // Idempotent: a second call (a cleanup after a test killed it) resolves with the first.
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        if (exited()) return resolve();
        // The child was unref'd at start; while we wait for its exit, it must keep the process alive.
        child.ref();
        child.once("exit", () => resolve());
        stopPid(pid, "SIGKILL");
      })),
  };
}

/** Kills every Redis whose pid file sits in `dir`: the safety net after a crashed test file. */
export function stopAllRedis(dir: string): void {
  if (!existsSync(dir)) return;
  for (const file of readdirSync(dir)) {
    if (/^redis-\d+\.pid$/.test(file)) stopPid(readPid(join(dir, file)), "SIGKILL");
  }
}

function readPid(file: string): number | undefined {
  try {
    return Number(readFileSync(file, "utf8").split("\n")[0]) || undefined;
  } catch {
    return undefined;
  }
}

function stopPid(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function uidOf(user: string): number {
  return Number(execFileSync("id", ["-u", user]).toString().trim());
}

function gidOf(user: string): number {
  return Number(execFileSync("id", ["-g", user]).toString().trim());
}
