// `npm run bench:floor -- [--quick] [--scenario fanout,dm]`
//
// How much of the gap to Socket.IO is the transport. The bench's capacity
// search (p99 ≤ 50 ms, ≥ 99 % delivered within the window, no stream ended as
// slow) run side by side against three systems on the same Redis, each with 2
// server processes and the same load generator:
//   - parley: the chat pods, as in `npm run bench`;
//   - relay: grpc-relay-server.ts, Parley's wire protocol and client with
//     nothing behind them (no Postgres, no session, no sequencing, no bounds),
//     relaying through Redis as Socket.IO's adapter does;
//   - socketio: the peer system.
// The relay's capacity is the most any server speaking Parley's protocol over
// grpc-js could reach here: the ceiling of R1 and R3. The output ends with
// `relay/socketio: fan-out capacity ratio F, DM capacity ratio D`.
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { searchCapacity } from "./capacity.js";
import { ParleyDriver } from "./parley-driver.js";
import { cleanupAll, killAllNow } from "./processes.js";
import { fmt, table } from "./report.js";
import { quiesce, Session, type StepResult, type System } from "./session.js";
import { startInfra } from "./setup.js";
import { SocketIoDriver } from "./socketio-driver.js";
import { buildPopulation, type ScenarioName } from "./workload.js";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    scenario: { type: "string", default: "fanout,dm" },
  },
});
const quick = values.quick;
const scenarios = values.scenario.split(",") as ScenarioName[];
if (scenarios.some((s) => s !== "fanout" && s !== "dm")) {
  process.stderr.write("--scenario must be fanout, dm or both\n");
  process.exit(2);
}
const settings = {
  users: 200,
  groupSize: 10,
  durationMs: (quick ? 2 : 4) * 1000,
  drainMs: (quick ? 2 : 3) * 1000,
  ramp: quick ? [100, 400, 1600, 6400] : [50, 100, 200, 400, 800, 1600, 3200, 6400, 12800],
  bisections: quick ? 1 : 3,
  bodyBytes: 100,
};

const started = performance.now();
const say = (line: string) => process.stdout.write(`[floor ${((performance.now() - started) / 1000).toFixed(0)}s] ${line}\n`);
const runId = randomBytes(3).toString("hex");
let tagCounter = 0;
const nextTag = () => `${runId}${(tagCounter++).toString(36)}`;
process.on("exit", killAllNow);

interface Row {
  scenario: ScenarioName;
  system: string;
  capacity: number;
  deliveriesPerSec: number;
  atCapacity?: StepResult;
}

async function main(): Promise<Row[]> {
  const infra = await startInfra(say, { postgres: { durable: true }, relays: 2 });
  const population = buildPopulation(runId, settings.users, settings.groupSize, 2);
  const everyone = population.names.map((_, i) => i);
  // The relay reuses Parley's client and driver; its System keeps the name "parley" only because the driver carries it.
  const systems: { label: string; system: System }[] = [
    {
      label: "parley",
      system: {
        name: "parley",
        driver: new ParleyDriver(infra.pods.map((p) => p.address)),
        backends: infra.pods,
        dependencies: [infra.postgresGroup, infra.redisGroup],
      },
    },
    {
      label: "relay",
      system: {
        name: "parley",
        driver: new ParleyDriver(infra.relays.map((r) => r.address)),
        backends: infra.relays,
        dependencies: [infra.redisGroup],
      },
    },
    { label: "socketio", system: { name: "socketio", driver: new SocketIoDriver(), backends: infra.sio, dependencies: [infra.redisGroup] } },
  ];
  const everyServer = [...infra.pods, ...infra.relays, ...infra.sio].map((b) => ({ name: b.name, pids: b.pids }));
  everyServer.push(infra.postgresGroup, infra.redisGroup);
  for (const { system } of systems) await system.driver.prepare(population);
  const rows: Row[] = [];
  for (const scenario of scenarios) {
    for (const { label, system } of systems) {
      await quiesce(everyServer, 10_000);
      const session = await Session.open(system, population, everyone);
      try {
        const byRate = new Map<number, StepResult>();
        const result = await searchCapacity(
          session,
          scenario,
          {
            ramp: settings.ramp,
            bisections: settings.bisections,
            settings: { durationMs: settings.durationMs, drainMs: settings.drainMs, bodyBytes: settings.bodyBytes },
            nextTag,
            beforeStep: () => quiesce(everyServer, 10_000),
          },
          (point, run) => {
            byRate.set(point.rate, run);
            say(
              `${scenario} ${label} ${point.rate}/s: p99 ${fmt(point.p99)} ms, delivered ${fmt(point.deliveredFraction * 100)}%, ${fmt(run.cpuSecondsPer1000, 3)} server CPU-s per 1000 deliveries, load generator ${fmt(run.loadgenCpuPercent, 0)}%${point.miss ? ` (misses: ${point.miss})` : ""}${run.invalid ? " INVALID" : ""}`,
            );
          },
        );
        rows.push({
          scenario,
          system: label,
          capacity: result.capacity,
          deliveriesPerSec: result.deliveriesPerSec,
          atCapacity: byRate.get(result.capacity),
        });
        say(`${scenario} ${label}: capacity ${result.lowerBound ? "at least " : ""}${result.capacity} msg/s`);
      } finally {
        await session.close();
      }
    }
  }
  return rows;
}

let code = 0;
let rows: Row[] = [];
try {
  rows = await main();
} catch (err) {
  process.stderr.write(`[floor] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  code = 1;
} finally {
  say("stopping every server, Redis and Postgres");
  await cleanupAll();
}
if (rows.length > 0) {
  process.stdout.write(
    `\nCapacity at the SLO, side by side (2 server processes each; Postgres durable; ${quick ? "quick" : "full"} ramp):\n${table(
      ["scenario", "system", "capacity msg/s", "deliveries/s", "p99 ms", "server CPU-s per 1000", "load generator %"],
      rows.map((r) => [
        r.scenario,
        r.system,
        String(r.capacity),
        fmt(r.deliveriesPerSec, 0),
        fmt(r.atCapacity?.counts.latency.p99 ?? Number.NaN),
        fmt(r.atCapacity?.cpuSecondsPer1000 ?? Number.NaN, 3),
        fmt(r.atCapacity?.loadgenCpuPercent ?? Number.NaN, 0),
      ]),
    )}\n`,
  );
  const ratio = (scenario: ScenarioName) => {
    const of = (system: string) => rows.find((r) => r.scenario === scenario && r.system === system)?.deliveriesPerSec ?? Number.NaN;
    return fmt(of("relay") / of("socketio"), 2);
  };
  process.stdout.write(`relay/socketio: fan-out capacity ratio ${ratio("fanout")}, DM capacity ratio ${ratio("dm")}\n`);
}
process.exit(code);
