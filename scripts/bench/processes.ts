// The benchmark's child processes: spawned in process groups of their own,
// found listening through /proc (no port race: they bind port 0 or a port we
// picked and we check it is theirs), and all stopped on exit, error or Ctrl-C.
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

export interface ServerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Last lines the process wrote, for error messages. */
  readonly output: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly alive: boolean;
  /** Sends `signal`; after `graceMs`, kills the whole process group. Resolves once it has exited. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

const running = new Set<ServerProcess>();
const cleanups: (() => Promise<void> | void)[] = [];

/** Registers a cleanup step; steps run in reverse order in `cleanupAll`. */
export function onCleanup(step: () => Promise<void> | void): void {
  cleanups.push(step);
}

/** Spawns `args[0]` in its own process group, keeping the tail of its output. */
export function spawnServer(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): ServerProcess {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) if (line.trim()) output.push(line);
    if (output.length > 200) output.splice(0, output.length - 200);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const pid = child.pid as number;
  const server: ServerProcess = {
    name,
    child,
    pid,
    output,
    exited,
    get alive() {
      return child.exitCode === null && child.signalCode === null;
    },
    async stop(signal = "SIGTERM", graceMs = 10_000) {
      if (server.alive) {
        killGroup(pid, signal);
        const timer = setTimeout(() => killGroup(pid, "SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      }
      // Anything the process left in its group (it should leave nothing).
      killGroup(pid, "SIGKILL");
      running.delete(server);
    },
  };
  running.add(server);
  void exited.then(() => killGroup(pid, "SIGKILL"));
  return server;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // group gone
  }
}

/** TCP ports `pid` listens on, from /proc/net/tcp{,6} and the process's socket fds. */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match) inodes.add(match[1]);
      } catch {
        // fd closed meanwhile
      }
    }
  } catch {
    return [];
  }
  const ports: number[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is cols[1] ("0100007F:1F90"), st is cols[3] ("0A" = LISTEN), inode is cols[9].
      if (cols.length < 10 || cols[3] !== "0A" || !inodes.has(cols[9])) continue;
      ports.push(parseInt(cols[1].split(":")[1], 16));
    }
  }
  return [...new Set(ports)];
}

/** Resolves with the port `server` listens on (the only one, or `expected`); fails if it exits first. */
export async function waitListening(server: ServerProcess, timeoutMs: number, expected?: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!server.alive) throw new Error(`${server.name} exited before listening:\n${server.output.slice(-30).join("\n")}`);
    const ports = listeningPorts(server.pid);
    if (expected !== undefined ? ports.includes(expected) : ports.length > 0) return expected ?? ports[0];
    if (Date.now() > deadline) throw new Error(`${server.name} did not listen within ${timeoutMs} ms:\n${server.output.slice(-30).join("\n")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let cleaning: Promise<void> | undefined;

/** Stops every child process, then runs the registered cleanups (Redis, Postgres, temp folder). Idempotent. */
export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...running].map((server) => server.stop("SIGTERM", 5_000).catch(() => undefined)));
    for (const step of cleanups.reverse()) {
      try {
        await step();
      } catch (err) {
        process.stderr.write(`[bench] cleanup step failed: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
  })();
  return cleaning;
}

/** Last resort when the process exits without cleaning up: SIGKILL every child group synchronously. */
export function killAllNow(): void {
  for (const server of running) killGroup(server.pid, "SIGKILL");
}
