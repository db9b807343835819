// `npm run cluster -- --pods 3`: Postgres, Redis and N Parley pods on loopback,
// for a person to try the cluster mode. Ctrl-C stops everything. The pods'
// JSON logs are shown as readable lines on a terminal (LOG_FORMAT overrides:
// json, pretty or auto).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LOG_FORMATS, type LogFormat, resolveLogFormat } from "../services/lib/logger.js";
import { ensureInstalled, startPostgres, startRedis, stopAllRedis } from "./local-services.js";
import { relayLogLines } from "./log-relay.js";

const { values } = parseArgs({
  options: {
    pods: { type: "string", default: "2" },
    "base-port": { type: "string", default: "50051" },
  },
});
const pods = Number(values.pods);
const basePort = Number(values["base-port"]);
if (!Number.isInteger(pods) || pods < 1 || pods > 20) throw new Error("--pods must be 1 to 20");
const requestedFormat = process.env.LOG_FORMAT?.trim() || "auto";
if (!(LOG_FORMATS as readonly string[]).includes(requestedFormat)) throw new Error(`LOG_FORMAT must be one of ${LOG_FORMATS.join(", ")}`);
const logFormat = resolveLogFormat(requestedFormat as LogFormat, process.stdout.isTTY === true);

const say = (line: string) => process.stdout.write(`[cluster] ${line}\n`);
const dir = mkdtempSync(join(tmpdir(), "parley-cluster-"));
ensureInstalled(say);
const postgres = await startPostgres(dir);
const redis = await startRedis(join(dir, "redis"));
say(`Postgres ${postgres.url}`);
say(`Redis    ${redis.url}`);

const children: ChildProcess[] = [];
for (let i = 0; i < pods; i++) {
  const port = basePort + i;
  const child = spawn(process.execPath, ["--import", "tsx", "services/main.ts"], {
    env: {
      ...process.env,
      DATABASE_URL: postgres.url,
      REDIS_URL: redis.url,
      GRPC_PORT: String(port),
      WEB_PORT: String(8080 + i),
      METRICS_PORT: String(9464 + i),
      POD_NAME: `pod-${i + 1}`,
      // The relay below decides how the lines look.
      LOG_FORMAT: "json",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  void relayLogLines(child.stdout, process.stdout, logFormat);
  children.push(child);
  say(`pod-${i + 1} on localhost:${port}, web on http://localhost:${8080 + i}, metrics on http://localhost:${9464 + i}/metrics (pid ${child.pid})`);
}
say(`try: npm run chat -- --server localhost:${basePort}   (and localhost:${basePort + 1} in another terminal)`);
say(`SIGTERM one pod to watch clients move: kill ${children[0]?.pid}`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  say("stopping pods, Redis and Postgres");
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
        }),
    ),
  );
  stopAllRedis(join(dir, "redis"));
  await postgres.stop();
  setTimeout(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  }, 500);
}
process.once("SIGINT", () => void stop());
process.once("SIGTERM", () => void stop());
