// Brings up what both systems need on loopback: a private Postgres and Redis,
// two Parley pods in cluster mode and two Socket.IO servers on the same Redis.
// The servers run the production build (dist/, built once here), as the image does.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { ensureInstalled, startPostgres, startRedis, stopAllRedis, type PostgresOptions } from "../local-services.js";
import { pin } from "./pinning.js";
import { groupPids, readProc, type ProcGroup } from "./procstat.js";
import { onCleanup, spawnServer, waitListening, type ServerProcess } from "./processes.js";
import type { BackendRef } from "./session.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PARLEY_MAIN = join(ROOT, "dist", "services", "main.js");
const SIO_MAIN = join(ROOT, "dist", "scripts", "bench", "socketio-server.js");
const RELAY_MAIN = join(ROOT, "dist", "scripts", "bench", "grpc-relay-server.js");
const START_TIMEOUT_MS = 90_000;

/** One server process of a system under test, and the loopback address clients use; `restart` replaces its process. */
export interface Backend extends BackendRef {
  process: ServerProcess;
  address: string;
  port: number;
}

export interface Infra {
  postgresUrl: string;
  redisUrl: string;
  pods: Backend[];
  sio: Backend[];
  /** The transport floor's relays (grpc-relay-server.ts), when asked for. */
  relays: Backend[];
  /** The durability settings the running Postgres reports (fsync, synchronous_commit, full_page_writes). */
  postgresSettings: PostgresDurability;
  /** CPU and RSS groups: Postgres (postmaster and backends), Redis. */
  postgresGroup: ProcGroup;
  redisGroup: ProcGroup;
  /** Starts a stopped backend again, on its old port when it is still free. */
  restart(backend: Backend): Promise<void>;
  /** Starts one more Parley pod (cluster mode, on a free port) with `env` added (e.g. SERVICES=chat) and `nodeArgs` given to node. */
  launchPod(name: string, env: NodeJS.ProcessEnv, nodeArgs?: string[]): Promise<Backend>;
  /** Starts one more Socket.IO server (on the same Redis, a free port) with `nodeArgs` given to node. */
  launchSocketIo(name: string, nodeArgs?: string[]): Promise<Backend>;
}

/** How durable the bench's Postgres is, as it reports itself: "durable" only when all three settings are on. */
export interface PostgresDurability {
  mode: "durable" | "fast";
  fsync: string;
  synchronous_commit: string;
  full_page_writes: string;
}

async function readDurability(url: string): Promise<PostgresDurability> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const show = async (name: string) => String((await client.query(`SHOW ${name}`)).rows[0]?.[name]);
    const fsync = await show("fsync");
    const synchronous_commit = await show("synchronous_commit");
    const full_page_writes = await show("full_page_writes");
    const durable = fsync === "on" && synchronous_commit === "on" && full_page_writes === "on";
    return { mode: durable ? "durable" : "fast", fsync, synchronous_commit, full_page_writes };
  } finally {
    await client.end();
  }
}

/** One line for the output: which Postgres durability the figures were measured with. */
export function describeDurability(d: PostgresDurability): string {
  const settings = `fsync=${d.fsync}, synchronous_commit=${d.synchronous_commit}, full_page_writes=${d.full_page_writes}`;
  return d.mode === "durable"
    ? `Postgres: durable (${settings}): a send is acknowledged after its commit is on disk`
    : `Postgres: FAST, not durable (${settings}; --fast-postgres): commits do not wait for the disk`;
}

/** `npm run build`: the servers run dist/, built from the sources as they are now. */
function buildDist(log: (line: string) => void): void {
  const started = performance.now();
  execFileSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "build.ts")], { stdio: ["ignore", "ignore", "inherit"] });
  log(`built dist/ in ${Math.round(performance.now() - started)} ms: the servers run plain JavaScript`);
}

export interface InfraOptions {
  postgres: PostgresOptions;
  /** `--pin`: the CPUs every server process runs on (pinning.ts). Default: any. */
  serverCpus?: string;
  /** Parley chat pods. Default 2. */
  pods?: number;
  /** Socket.IO servers. Default 2. */
  socketIoServers?: number;
  /** The transport floor's relays on the same Redis (floor.ts). Default 0. */
  relays?: number;
}

export async function startInfra(log: (line: string) => void, options: InfraOptions): Promise<Infra> {
  const { postgres: postgresOptions, serverCpus, pods: podCount = 2, socketIoServers: sioCount = 2, relays: relayCount = 0 } = options;
  /** Pins a server's processes to the servers' CPUs under --pin. */
  const pinServer = (pids: number[]) => {
    if (serverCpus !== undefined) for (const pid of pids) pin(pid, serverCpus);
  };
  ensureInstalled(log);
  buildDist(log);
  const dir = mkdtempSync(join(tmpdir(), "parley-bench-"));
  const redisDir = join(dir, "redis");
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));

  const postgres = await startPostgres(dir, postgresOptions);
  const postmasterPid = () => Number(readFileSync(join(dir, "pg", "postmaster.pid"), "utf8").split("\n")[0]) || 0;
  const pmPid = postmasterPid();
  onCleanup(async () => {
    // A fast shutdown that waits for the postmaster; if it hangs, SIGKILL it (its backends follow).
    await postgres.stop().catch(() => undefined);
    if (readProc(pmPid)) process.kill(pmPid, "SIGKILL");
  });
  // The postmaster and the processes it has now; the backends it forks later inherit its CPUs.
  pinServer(groupPids({ name: "postgres", pids: () => [pmPid], withChildren: true }));
  const redis = await startRedis(redisDir);
  pinServer([redis.pid]);
  onCleanup(async () => {
    await redis.stop();
    stopAllRedis(redisDir);
  });
  const postgresSettings = await readDurability(postgres.url);
  log(`Postgres ${postgres.url}, Redis ${redis.url} (in ${dir})`);
  log(describeDurability(postgresSettings));

  const podEnv = (name: string, port: number): NodeJS.ProcessEnv => ({
    ...process.env,
    DATABASE_URL: postgres.url,
    REDIS_URL: redis.url,
    GRPC_PORT: String(port),
    // Several pods on one machine, and no browser in the benchmark.
    WEB_PORT: "off",
    METRICS_PORT: "0",
    POD_NAME: name,
    LOG_LEVEL: "warn",
    // The benchmark measures delivery, not flood control.
    RATE_LIMIT_PER_SECOND: "1000000",
    RATE_LIMIT_BURST: "1000000",
  });
  const sioEnv = (name: string, port: number): NodeJS.ProcessEnv => ({
    ...process.env,
    REDIS_URL: redis.url,
    SIO_PORT: String(port),
    SIO_NAME: name,
  });
  const relayEnv = (name: string, port: number): NodeJS.ProcessEnv => ({
    ...process.env,
    REDIS_URL: redis.url,
    RELAY_PORT: String(port),
    RELAY_NAME: name,
  });
  const MAINS = { parley: PARLEY_MAIN, socketio: SIO_MAIN, relay: RELAY_MAIN };
  const ENVS = { parley: podEnv, socketio: sioEnv, relay: relayEnv };

  const launch = async (
    name: string,
    kind: keyof typeof MAINS,
    port = 0,
    extraEnv: NodeJS.ProcessEnv = {},
    nodeArgs: string[] = [],
  ): Promise<Backend> => {
    const main = MAINS[kind];
    const env = { ...ENVS[kind](name, port), ...extraEnv };
    // BENCH_CPU_PROF_DIR=.bench/profiles: every server writes a V8 CPU profile there when it exits.
    const profile = process.env.BENCH_CPU_PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
    const proc = spawnServer(name, process.execPath, [...profile, ...nodeArgs, "--enable-source-maps", main], { ...env });
    pinServer([proc.pid]);
    const bound = await waitListening(proc, START_TIMEOUT_MS, port === 0 ? undefined : port);
    const backend: Backend = {
      name,
      process: proc,
      address: `127.0.0.1:${bound}`,
      port: bound,
      pids: () => (backend.process.alive ? [backend.process.pid] : []),
    };
    return backend;
  };

  // Pods one after the other: the first applies the migrations, the second finds them done.
  const pods: Backend[] = [];
  for (let i = 1; i <= podCount; i++) pods.push(await launch(`pod-${i}`, "parley"));
  const sio = await Promise.all(Array.from({ length: sioCount }, (_, i) => launch(`sio-${i + 1}`, "socketio")));
  const relays = await Promise.all(Array.from({ length: relayCount }, (_, i) => launch(`relay-${i + 1}`, "relay")));
  log(`Parley pods ${pods.map((p) => p.address).join(", ")}; Socket.IO servers ${sio.map((s) => s.address).join(", ")}`);

  return {
    postgresUrl: postgres.url,
    redisUrl: redis.url,
    postgresSettings,
    pods,
    sio,
    relays,
    postgresGroup: { name: "postgres", pids: () => [pmPid], withChildren: true, proportional: true },
    redisGroup: { name: "redis", pids: () => [redis.pid] },
    async restart(backend) {
      if (backend.process.alive) return;
      const kind = pods.includes(backend) ? "parley" : relays.includes(backend) ? "relay" : "socketio";
      let fresh: Backend;
      try {
        fresh = await launch(backend.name, kind, backend.port);
      } catch {
        fresh = await launch(backend.name, kind, 0);
      }
      backend.process = fresh.process;
      backend.address = fresh.address;
      backend.port = fresh.port;
    },
    launchPod: (name, env, nodeArgs) => launch(name, "parley", 0, env, nodeArgs),
    launchSocketIo: (name, nodeArgs) => launch(name, "socketio", 0, {}, nodeArgs),
  };
}
