// The memory scenario: what one chat pod (cluster mode, the production build)
// costs idle, and per idle Connect stream. A pod of its own (SERVICES=chat) is
// started, left to settle and garbage-collected; then idle streams are opened
// on it in steps (1k, 5k, 10k in all by default), each on an HTTP/2 connection
// of its own, from several load-generator processes (memory-streams.ts), and
// after each step the pod is garbage-collected again and its RSS read.
// Per stream: (RSS at N − idle RSS) ÷ N. The same for a Socket.IO server of
// its own (on the same Redis) and idle sockets.
//
// The streams belong to a few hundred users signed up for it (sign-up is a
// slow scrypt), several streams each: streams per user matter for presence,
// not for the memory of a stream.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ParleyApi } from "../../services/client/api.js";
import { mapLimit } from "./parley-driver.js";
import { IpcWorker } from "./ipc-worker.js";
import type { WorkerReply, WorkerRequest } from "./memory-streams.js";
import { readProc } from "./procstat.js";
import { sleep } from "./session.js";
import type { Backend, Infra } from "./setup.js";
import type { SystemName } from "./workload.js";

const WORKER = fileURLToPath(new URL("./memory-streams.ts", import.meta.url));
/**
 * Given to the measured pod's node: on SIGUSR2 it runs two full garbage
 * collections and writes its process.memoryUsage() to stderr as one JSON line,
 * so that RSS is read without garbage that no collection has looked at yet,
 * and the heap / external split says where the memory is.
 */
const GC_HOOK = `process.on("SIGUSR2",()=>{gc();gc();process.stderr.write(JSON.stringify({benchMemory:process.memoryUsage()})+"\\n")})`;
const POD_ARGS = ["--expose-gc", `--import=data:text/javascript,${encodeURIComponent(GC_HOOK)}`];

export interface MemoryOptions {
  system: SystemName;
  /** Cumulative stream counts to measure at, ascending (e.g. 1000, 5000, 10000). */
  levels: number[];
  /** Users the streams belong to (Parley: signed up first). */
  users: number;
  /** Load-generator processes the streams are spread over. */
  workers: number;
  /** Parley: each stream on an HTTP/2 connection of its own ("own"), or each worker's streams on one ("shared", as behind Envoy). */
  connections: "own" | "shared";
  tag: string;
}

/** process.memoryUsage() of the pod, in bytes. */
export interface MemorySplit {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface MemoryLevel {
  /** Idle streams open on the pod (asked for; `live` of them were caught up). */
  streams: number;
  live: number;
  failed: number;
  /** The pod's open file descriptors: about one socket per stream shows each has its own connection. */
  fds: number;
  split: MemorySplit;
  /** (RSS here − idle RSS) ÷ streams. */
  perStreamBytes: number;
  /** The same for the V8 heap (used) and for memory outside it (external). */
  heapPerStreamBytes: number;
  /** Time to open this step's streams, ms. */
  openMs: number;
}

export interface MemoryResult {
  system: SystemName;
  connections: "own" | "shared";
  pod: string;
  /** The pod after start-up, one user signed in elsewhere and a full collection. */
  idle: MemorySplit;
  idleFds: number;
  levels: MemoryLevel[];
  /** The open-files limit the pod and the load generators ran with (soft). */
  fdLimit: number;
  firstError?: string;
}

/** The soft open-files limit of this process, which its children inherit. */
function openFilesLimit(): number {
  const line = readFileSync("/proc/self/limits", "utf8")
    .split("\n")
    .find((l) => l.startsWith("Max open files"));
  return Number(line?.split(/\s+/)[3]) || Number.NaN;
}

/** Asks the pod for a full collection and its memory split, read back from its output. */
async function collect(pod: Backend): Promise<MemorySplit> {
  const seen = pod.process.output.length;
  process.kill(pod.process.pid, "SIGUSR2");
  for (let waited = 0; waited < 10_000; waited += 50) {
    await sleep(50);
    // The output keeps its last 200 lines: look for the newest report.
    const line = [...pod.process.output].reverse().find((l) => l.startsWith('{"benchMemory"'));
    if (line && pod.process.output.length !== seen) return (JSON.parse(line) as { benchMemory: MemorySplit }).benchMemory;
  }
  throw new Error(`${pod.name} did not report its memory within 10 s`);
}

/** RSS after a collection: two rounds, a second apart, the second one kept (the first frees, the second settles). */
async function settledSplit(pod: Backend): Promise<MemorySplit> {
  await collect(pod);
  await sleep(1_000);
  const split = await collect(pod);
  const rss = readProc(pod.process.pid)?.rssBytes;
  return { ...split, rss: rss ?? split.rss };
}

const fdCount = (pid: number) => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
};

/** Signs up `names` on `address` (a few at a time: each is a scrypt on the pod); their session tokens, in order. */
export function signUpMany(address: string, names: string[]): Promise<string[]> {
  return mapLimit(names, 8, async (name) => {
    const api = new ParleyApi(address);
    try {
      return (await api.signUp(name, "bench-password")).token;
    } finally {
      api.close();
    }
  });
}

export async function runMemory(
  infra: Pick<Infra, "pods" | "launchPod" | "launchSocketIo">,
  options: MemoryOptions,
  say: (line: string) => void,
): Promise<MemoryResult> {
  const fdLimit = openFilesLimit();
  const most = options.levels[options.levels.length - 1];
  if (!(fdLimit > most + 500)) say(`memory: the open-files limit is ${fdLimit}, too low for ${most} streams on one pod (ulimit -n)`);
  const names = Array.from({ length: options.users }, (_, i) => `${options.tag}m${i}`);
  // Socket.IO has no accounts: a username is all its server asks for.
  const parley = options.system === "parley";
  const tokens = parley ? await signUpMany(infra.pods[0].address, names) : names;
  const pod = parley ? await infra.launchPod("mem-1", { SERVICES: "chat" }, POD_ARGS) : await infra.launchSocketIo("mem-sio", POD_ARGS);
  const workers = Array.from({ length: options.workers }, () => new IpcWorker<WorkerRequest, WorkerReply>(WORKER));
  try {
    await sleep(2_000);
    const idle = await settledSplit(pod);
    const idleFds = fdCount(pod.process.pid);
    say(`memory ${options.system}: idle server ${(idle.rss / 2 ** 20).toFixed(1)} MB RSS (heap ${(idle.heapUsed / 2 ** 20).toFixed(1)} MB used)`);
    const result: MemoryResult = { system: options.system, connections: options.connections, pod: pod.name, idle, idleFds, levels: [], fdLimit };
    let open = 0;
    let live = 0;
    let failed = 0;
    for (const level of options.levels) {
      const adding = level - open;
      const started = performance.now();
      const share = (w: number) => Math.floor(adding / workers.length) + (w < adding % workers.length ? 1 : 0);
      let from = open;
      const replies = await Promise.all(
        workers.map((worker, w) => {
          const count = share(w);
          const request = { open: { system: options.system, address: pod.address, tokens, count, from, shared: options.connections === "shared" } };
          from += count;
          return worker.request(request).then((reply) => reply.opened);
        }),
      );
      const openMs = performance.now() - started;
      open = level;
      for (const reply of replies) {
        live += reply.live;
        failed += reply.failed;
        result.firstError ??= reply.firstError;
      }
      const split = await settledSplit(pod);
      const entry: MemoryLevel = {
        streams: level,
        live,
        failed,
        fds: fdCount(pod.process.pid),
        split,
        perStreamBytes: (split.rss - idle.rss) / level,
        heapPerStreamBytes: (split.heapUsed - idle.heapUsed) / level,
        openMs,
      };
      result.levels.push(entry);
      say(
        `memory ${options.system}: ${level} idle streams (${live} live, ${failed} failed, ${entry.fds} fds): ${(split.rss / 2 ** 20).toFixed(1)} MB RSS, ${(entry.perStreamBytes / 1024).toFixed(1)} KB per stream (heap ${(entry.heapPerStreamBytes / 1024).toFixed(1)} KB); opened in ${(openMs / 1000).toFixed(1)} s`,
      );
      if (failed > 0) break;
    }
    return result;
  } finally {
    await Promise.all(workers.map((w) => w.close({ close: true })));
    await pod.process.stop("SIGTERM", 10_000);
  }
}
