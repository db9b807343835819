// `npx tsx scripts/bench/memory-startup.ts [--runs N]`: what the production
// build changes for one server process. Starts the server N times each way,
// alternated (TypeScript through tsx, the built JavaScript in dist/, and
// the same with --enable-source-maps as the image runs it), in the embedded
// mode (PGlite on a folder an unmeasured first start made, no Redis) and as a
// cluster-mode chat pod (a private Postgres and Redis), and prints the medians of the time from spawn
// to the "gRPC server listening" log line and of the RSS once the process has
// sat idle for IDLE_MS. Builds dist/ first.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startPostgres, startRedis } from "../local-services.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const IDLE_MS = 5_000;
const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
const runs = Number(values.runs);

const ways: Record<string, string[]> = {
  tsx: ["--import", "tsx", join(ROOT, "services/main.ts")],
  built: [join(ROOT, "dist/services/main.js")],
  // As the image and `npm start` run it: stack traces point at the TypeScript.
  "built+maps": ["--enable-source-maps", join(ROOT, "dist/services/main.js")],
};

/** One start: ms until the listening line, and RSS in bytes after IDLE_MS of idling. */
async function once(args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; rss: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  try {
    const ms = await new Promise<number>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("gRPC server listening")) resolve(performance.now() - started);
      });
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.once("exit", (code) => reject(new Error(`exited ${code} before listening:\n${output}`)));
    });
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
    return { ms, rss };
  } finally {
    child.kill("SIGKILL");
    await new Promise((r) => (child.exitCode === null && child.signalCode === null ? child.once("exit", r) : r(undefined)));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

execFileSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts/build.ts")], { stdio: "inherit" });
const dir = mkdtempSync(join(tmpdir(), "parley-startup-"));
const postgres = await startPostgres(dir);
const redis = await startRedis(join(dir, "redis"));
try {
  const common = { GRPC_PORT: "0", WEB_PORT: "off", METRICS_PORT: "0", LOG_LEVEL: "info" };
  const modes: Record<string, () => NodeJS.ProcessEnv> = {
    // One data folder, created by the unmeasured start below: a restart, not a first start (PGlite's initdb).
    embedded: () => ({ ...common, PARLEY_DATA_DIR: join(dir, "data") }),
    "chat pod": () => ({ ...common, SERVICES: "chat", DATABASE_URL: postgres.url, REDIS_URL: redis.url, POD_NAME: "pod-1" }),
  };
  // The first starts create PGlite's folder and apply the migrations: not measured.
  for (const env of Object.values(modes)) await once(ways.built, env());
  for (const [mode, env] of Object.entries(modes)) {
    const results: Record<string, { ms: number[]; rss: number[] }> = Object.fromEntries(Object.keys(ways).map((way) => [way, { ms: [], rss: [] }]));
    for (let i = 0; i < runs; i++) {
      for (const [way, args] of Object.entries(ways)) {
        const r = await once(args, env());
        results[way].ms.push(r.ms);
        results[way].rss.push(r.rss);
      }
    }
    for (const [way, r] of Object.entries(results)) {
      const ms = r.ms.map((x) => x.toFixed(0)).join(" ");
      process.stdout.write(
        `${mode.padEnd(9)} ${way.padEnd(10)} start ${median(r.ms).toFixed(0)} ms (runs: ${ms}), idle RSS ${(median(r.rss) / 2 ** 20).toFixed(1)} MiB\n`,
      );
    }
  }
} finally {
  await redis.stop();
  await postgres.stop();
  rmSync(dir, { recursive: true, force: true });
}
