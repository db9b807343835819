// The production build (built here into a scratch folder, run by plain node)
// serves the pre-built browser app without bundling at start-up; and the
// benchmark's scale scenarios, checked small against pods of that build:
// the memory scenario measures a chat pod idle and with idle streams, each
// on a connection of its own; the resume at scale drains a pod under its
// clients and counts them back on the other pod, with nothing lost.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { runMemory } from "../scripts/bench/memory.js";
import { spawnServer, waitListening } from "../scripts/bench/processes.js";
import { runResumeAtScale } from "../scripts/bench/resume-scale.js";
import type { Backend } from "../scripts/bench/setup.js";
import { freshDatabase, freshRedis, scratchDir } from "./helpers/infra.js";
import { NO_RATE_LIMIT } from "./helpers/servers.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
// Inside the repository (git-ignored): the bundles import node_modules from there.
const OUT = join(".tmp", `build-test-${randomBytes(4).toString("hex")}`);

test.serial.before(() => {
  execFileSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "build.ts"), "--out", OUT], { stdio: "inherit" });
});
test.after.always(() => rmSync(join(ROOT, OUT), { recursive: true, force: true }));

/** Starts pods of the build on one Postgres and Redis, as the bench's setup does. */
async function cluster(t: { teardown(fn: () => Promise<void>): void }) {
  const databaseUrl = await freshDatabase();
  const redis = await freshRedis();
  t.teardown(() => redis.stop());
  const launched: Backend[] = [];
  t.teardown(async () => {
    await Promise.all(launched.map((b) => b.process.stop("SIGKILL", 0)));
  });
  const launch = async (name: string, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = [], port = 0): Promise<Backend> => {
    const proc = spawnServer(name, process.execPath, [...nodeArgs, join(ROOT, OUT, "services", "main.js")], {
      ...process.env,
      ...NO_RATE_LIMIT,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      GRPC_PORT: String(port),
      WEB_PORT: "off",
      METRICS_PORT: "0",
      POD_NAME: name,
      LOG_LEVEL: "warn",
      ...env,
    });
    const bound = await waitListening(proc, 60_000, port === 0 ? undefined : port);
    const backend: Backend = { name, process: proc, address: `127.0.0.1:${bound}`, port: bound, pids: () => [proc.pid] };
    launched.push(backend);
    return backend;
  };
  /** A Socket.IO server of the build, on the same Redis. */
  const launchSocketIo = async (name: string, nodeArgs: string[] = []): Promise<Backend> => {
    const main = join(ROOT, OUT, "scripts", "bench", "socketio-server.js");
    const proc = spawnServer(name, process.execPath, [...nodeArgs, main], { ...process.env, REDIS_URL: redis.url, SIO_PORT: "0", SIO_NAME: name });
    const bound = await waitListening(proc, 60_000);
    const backend: Backend = { name, process: proc, address: `127.0.0.1:${bound}`, port: bound, pids: () => [proc.pid] };
    launched.push(backend);
    return backend;
  };
  // One after the other: the first applies the migrations.
  const pods = [await launch("pod-1"), await launch("pod-2")];
  return { pods, launch, launchSocketIo };
}

test.serial("the memory scenario measures an idle server and its idle connections, each its own or (Parley) shared, for both systems", async (t) => {
  const { pods, launch, launchSocketIo } = await cluster(t);
  const infra = { pods, launchPod: (name: string, env: NodeJS.ProcessEnv, nodeArgs?: string[]) => launch(name, env, nodeArgs), launchSocketIo };
  const said: string[] = [];
  const runs = [
    { system: "parley", connections: "own" },
    { system: "parley", connections: "shared" },
    { system: "socketio", connections: "own" },
  ] as const;
  for (const { system, connections } of runs) {
    const result = await runMemory(infra, { system, connections, levels: [20, 60], users: 4, workers: 2, tag: `t${system}${connections}` }, (line) =>
      said.push(line),
    );
    t.is(result.system, system);
    t.true(result.idle.rss > 10 * 2 ** 20, "an idle server's RSS, read after a collection");
    t.true(result.idle.heapUsed > 0 && result.idle.heapUsed < result.idle.rss);
    t.deepEqual(
      result.levels.map((l) => [l.streams, l.live, l.failed]),
      [
        [20, 20, 0],
        [60, 60, 0],
      ],
    );
    for (const level of result.levels) {
      const sockets = level.fds - result.idleFds;
      if (connections === "own")
        t.true(sockets >= level.streams, `${system}: ${level.fds} fds for ${level.streams}: each stream holds a socket of its own`);
      // Shared: one connection per load-generator process (2 here); the rest is the pod's Postgres pool growing (≤ 10).
      else t.true(sockets <= 2 + 10, `${system} shared: ${level.fds} fds for ${level.streams} (idle ${result.idleFds})`);
      t.true(Number.isFinite(level.perStreamBytes) && Number.isFinite(level.heapPerStreamBytes));
    }
  }
  t.is(said.length, 9);
});

test.serial("the resume at scale drains a pod under its clients; all come back on the other pod with nothing lost", async (t) => {
  const { pods, launch } = await cluster(t);
  const restart = async (backend: Backend) => {
    const fresh = await launch(backend.name);
    Object.assign(backend, { process: fresh.process, address: fresh.address, port: fresh.port });
  };
  const result = await runResumeAtScale(
    { pods, restart },
    { clients: 40, users: 4, workers: 2, rate: 10, leadMs: 1_000, tailMs: 500, maxMs: 20_000, drainMs: 10_000, bodyBytes: 64, tag: "t" },
    () => undefined,
  );
  t.is(result.live, 40);
  t.is(result.resumed, 40);
  t.deepEqual(result.resumedOn, { "pod-2": 40 });
  t.true(Number.isFinite(result.resumeMsMax) && result.resumeMsMax >= result.resumeMsP50);
  t.true(result.drainToReadyMsP50 >= 0 && result.readyToCaughtUpMsP50 >= 0);
  t.true(result.acked > 0 && result.sentDuringOutage > 0, "messages were sent while the clients were away");
  t.is(result.lost, 0);
  t.is(result.duplicates, 0);
  // The drained pod was started again.
  t.true(pods[0].process.alive);
});

/** Processes whose parent is `pid` (esbuild's helper would be one). */
function childrenOf(pid: number): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

test.serial("the built server serves the pre-built app, and starts no bundler", async (t) => {
  const proc = spawnServer("built", process.execPath, [join(ROOT, OUT, "services", "main.js")], {
    ...process.env,
    DATABASE_URL: undefined,
    REDIS_URL: undefined,
    PARLEY_DATA_DIR: scratchDir("built"),
    GRPC_PORT: "0",
    WEB_PORT: "0",
    METRICS_PORT: "0",
    POD_NAME: "built",
    LOG_LEVEL: "info",
  });
  t.teardown(() => proc.stop("SIGKILL", 0));
  await waitListening(proc, 60_000);
  let web: number | undefined;
  for (let waited = 0; web === undefined && waited < 30_000; waited += 100) {
    const line = proc.output.find((l) => l.includes('"web server listening"'));
    if (line) web = JSON.parse(line).port as number;
    else await new Promise((r) => setTimeout(r, 100));
  }
  const script = await fetch(`http://127.0.0.1:${web}/app.js`);
  t.is(script.status, 200);
  t.deepEqual(Buffer.from(await script.arrayBuffer()), readFileSync(join(ROOT, OUT, "services", "web", "app-built", "app.js")));
  t.regex(await (await fetch(`http://127.0.0.1:${web}/`)).text(), /<script type="module" src="\/app.js">/);
  t.deepEqual(childrenOf(proc.pid), [], "no esbuild helper process");
});
