// `npm run bench -- [--compare] [--quick] [--scenario fanout,dm,resume] ...`
//
// The same workload against Parley (2 pods, cluster mode, Postgres + Redis)
// and against Socket.IO with @socket.io/redis-adapter (2 servers, same Redis),
// on loopback, in one run. Open-loop load (sends scheduled by the clock), exact
// loss and duplicate counts, latency percentiles, CPU and RSS of every server
// process. Each system's capacity at the SLO (p99 ≤ 50 ms, ≥ 99 % delivered
// within the window, no stream ended as slow) is found by a ramp and
// bisection, for fanout and DMs; then p99 and server CPU per delivery at a
// rate both sustain, alternated; then fanout at twice each capacity. The output
// ends with the design's two ratio lines; JSON and an SVG chart go to .bench/.
import { randomBytes } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { searchCapacity, type CapacityResult } from "./capacity.js";
import { runMemory } from "./memory.js";
import { ParleyDriver } from "./parley-driver.js";
import { cleanupAll, killAllNow } from "./processes.js";
import { describePinning, pin, pinningFor } from "./pinning.js";
import { fmt, renderReport, writeResults, type BenchResults } from "./report.js";
import { runResume } from "./resume.js";
import { runResumeAtScale } from "./resume-scale.js";
import { backendGroup, quiesce, Session, type StepResult, type System } from "./session.js";
import { startInfra, type Backend } from "./setup.js";
import { SocketIoDriver } from "./socketio-driver.js";
import { buildPopulation, type ScenarioName, type SystemName } from "./workload.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const USAGE = `usage: npm run bench -- [options]
  --compare            both systems, and the ratio lines (implied by a full run)
  --quick              short windows, a coarse ramp and one bisection step: under 3 minutes
  --scenario LIST      fanout,dm,resume,memory or all (default all; quick's all leaves memory out)
  --system NAME        parley, socketio or both (default both)
  --users N            virtual users, each with its own connection (quick 100, full 200)
  --group-size N       members per group in fanout (default 10)
  --rate N             the shared rate where p99 and CPU per delivery are compared (default: a third of the lower capacity)
  --duration S         sending window per run, seconds (quick 2, full 8)
  --drain S            longest wait for late deliveries after the window (quick 2, full 5)
  --rounds N           alternated rounds at the shared rate (quick 1, full 3)
  --ramp LIST          offered rates tried until one misses the SLO (quick 100,400,1600,6400; full 50,100,200,...,12800)
  --bisect N           bisection steps after the ramp (quick 1, full 4)
  --resume-users N     receivers in the resume scenario (quick 10, full 50)
  --resume-rate N      messages/s during the resume scenario (default 50)
  --resume-clients N   Parley clients on the drained pod in the resume at scale (quick 200, full 1000; 0: skip it)
  --memory-streams LIST  idle streams on one chat pod, cumulative (quick 250,1000; full 1000,5000,10000)
  --memory-users N     users those streams belong to (default 200)
  --pin                servers on every CPU but the last, the load generator (and sampler) on the last (taskset);
                       the same for both systems; the output says which was used
  --fast-postgres      Postgres with fsync, synchronous_commit and full_page_writes off (as in the tests): not durable;
                       the default is production durability, and the output says which was used
  --body-bytes N       message body size (default 100)
  --max-seconds S      give up (and clean up) after this long (quick 170, full 3600)`;

const { values } = parseArgs({
  options: {
    compare: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    scenario: { type: "string", default: "all" },
    system: { type: "string", default: "both" },
    users: { type: "string" },
    "group-size": { type: "string" },
    rate: { type: "string" },
    bisect: { type: "string" },
    duration: { type: "string" },
    drain: { type: "string" },
    rounds: { type: "string" },
    ramp: { type: "string" },
    "resume-users": { type: "string" },
    "resume-rate": { type: "string" },
    "memory-streams": { type: "string" },
    "resume-clients": { type: "string" },
    "memory-users": { type: "string" },
    "body-bytes": { type: "string" },
    "fast-postgres": { type: "boolean", default: false },
    pin: { type: "boolean", default: false },
    "max-seconds": { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

function num(name: keyof typeof values, quick: number, full: number, min: number, max: number): number {
  const raw = values[name];
  const value = raw === undefined ? (values.quick ? quick : full) : Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    process.stderr.write(`--${name} must be a number from ${min} to ${max}\n${USAGE}\n`);
    process.exit(2);
  }
  return value;
}

const quick = values.quick;
const compare = values.compare || !quick;
const settings = {
  users: num("users", 100, 200, 4, 5000),
  groupSize: num("group-size", 10, 10, 2, 1000),
  sharedRate: values.rate === undefined ? undefined : num("rate", 0, 0, 1, 100_000),
  durationMs: num("duration", 2, 8, 1, 600) * 1000,
  drainMs: num("drain", 2, 5, 0.5, 120) * 1000,
  rounds: num("rounds", 1, 3, 1, 20),
  bisect: num("bisect", 1, 4, 0, 20),
  /** After the overload step: longest wait for late deliveries. */
  overloadDrainMs: (quick ? 5 : 20) * 1000,
  resumeUsers: num("resume-users", 10, 50, 1, 1000),
  resumeRate: num("resume-rate", 50, 50, 1, 10_000),
  bodyBytes: num("body-bytes", 100, 100, 32, 4096),
  maxSeconds: num("max-seconds", 170, 3600, 10, 86_400),
  resumeClients: num("resume-clients", 200, 1000, 0, 20_000),
  memoryStreams: (values["memory-streams"] ?? (quick ? "250,1000" : "1000,5000,10000")).split(",").map(Number),
  memoryUsers: num("memory-users", 200, 200, 1, 10_000),
  ramp: (values.ramp ?? (quick ? "100,400,1600,6400" : "50,100,200,400,800,1600,3200,6400,12800")).split(",").map(Number),
};
/** Longest wait for the servers to go idle before a step: a missed step leaves a backlog that must not bill the next. */
const settle = quick ? 3_000 : 10_000;
if (settings.memoryStreams.some((n, i, all) => !Number.isInteger(n) || n <= (all[i - 1] ?? 0))) {
  process.stderr.write(`--memory-streams must be a comma list of ascending stream counts\n`);
  process.exit(2);
}
if (settings.ramp.some((r) => !Number.isFinite(r) || r <= 0)) {
  process.stderr.write(`--ramp must be a comma list of positive rates\n`);
  process.exit(2);
}
const scenarios = new Set(values.scenario === "all" ? ["fanout", "dm", "resume", ...(quick ? [] : ["memory"])] : values.scenario.split(","));
for (const s of scenarios) {
  if (!["fanout", "dm", "resume", "memory"].includes(s)) {
    process.stderr.write(`unknown scenario "${s}"\n${USAGE}\n`);
    process.exit(2);
  }
}
if (!["parley", "socketio", "both"].includes(values.system)) {
  process.stderr.write(`--system must be parley, socketio or both\n`);
  process.exit(2);
}
const systemNames: SystemName[] = values.system === "both" ? ["parley", "socketio"] : [values.system as SystemName];
const loadScenarios = (["fanout", "dm"] as ScenarioName[]).filter((s) => scenarios.has(s));
if (settings.users < settings.groupSize) {
  process.stderr.write(`--users must be at least --group-size\n`);
  process.exit(2);
}

const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)}s`;
const say = (line: string) => process.stdout.write(`[bench ${elapsed()}] ${line}\n`);
const runId = randomBytes(3).toString("hex");
let tagCounter = 0;
const nextTag = () => `${runId}${(tagCounter++).toString(36)}`;

// Stop everything on Ctrl-C, kill, a crash, or the time limit.
let exiting = false;
async function bail(code: number, why: string): Promise<never> {
  if (!exiting) {
    exiting = true;
    process.stderr.write(`[bench] ${why}; stopping every process\n`);
    await cleanupAll();
  }
  process.exit(code);
}
process.once("SIGINT", () => void bail(130, "interrupted"));
process.once("SIGTERM", () => void bail(143, "terminated"));
process.on("exit", killAllNow);
const limit = setTimeout(() => void bail(1, `time limit of ${settings.maxSeconds} s reached`), settings.maxSeconds * 1000);
limit.unref();

const results: BenchResults = {
  runId,
  settings,
  systems: systemNames,
  loadScenarios,
  steps: [],
  ramps: [],
  sharedRates: {},
  resumes: [],
  problems: [],
};

/** The load generator's CPU in a progress line, and INVALID when it saturated. */
const loadgenNote = (step: StepResult) => `, load generator ${fmt(step.loadgenCpuPercent, 0)}% CPU${step.invalid ? " INVALID (saturated)" : ""}`;

function check(step: StepResult, label: string): void {
  const { lost, duplicates, unacked, expected } = step.counts;
  if (lost > 0 || duplicates > 0) {
    results.problems.push(
      `${step.system} ${step.scenario} ${label}: lost ${lost}, duplicated ${duplicates} of ${expected} expected deliveries (${unacked} sends unacknowledged)`,
    );
  }
}

async function main(): Promise<void> {
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  say(
    `run ${runId}: ${quick ? "quick" : "full"}${compare ? ", compare" : ""}; ${systemNames.join(" + ")}; ${[...scenarios].join(", ")}; load average ${load}`,
  );
  const pinning = values.pin ? pinningFor(cpus().length) : undefined;
  if (values.pin && pinning === undefined) say("--pin: one CPU only, nothing to pin");
  // This process first: the sampler and the workers it starts inherit its CPUs; the servers are pinned as they start.
  if (pinning) pin(process.pid, pinning.loadGenerator);
  results.pinning = pinning;
  say(describePinning(pinning));
  const infra = await startInfra(say, { postgres: { durable: !values["fast-postgres"] }, serverCpus: pinning?.servers });
  results.postgres = infra.postgresSettings;
  const population = buildPopulation(runId, settings.users, settings.groupSize, settings.resumeUsers);
  const everyone = population.names.map((_, i) => i);
  const systems: Record<SystemName, System & { backends: Backend[] }> = {
    parley: {
      name: "parley",
      driver: new ParleyDriver(infra.pods.map((p) => p.address)),
      backends: infra.pods,
      dependencies: [infra.postgresGroup, infra.redisGroup],
    },
    socketio: { name: "socketio", driver: new SocketIoDriver(), backends: infra.sio, dependencies: [infra.redisGroup] },
  };
  const serverGroups = (s: System) => [...s.backends.map(backendGroup), ...s.dependencies];
  // Before each measured run, both systems' servers should be idle: one run's backlog must not bill the next.
  const everyServer = [...new Map(systemNames.flatMap((n) => serverGroups(systems[n])).map((g) => [g.name, g])).values()];
  const needsPopulation = loadScenarios.length > 0 || scenarios.has("resume");
  for (const name of needsPopulation ? systemNames : []) await systems[name].driver.prepare(population);
  say(`${settings.users} users: ${population.groups.length} groups of ${settings.groupSize}, ${population.pairs.length} DM pairs`);

  const stepSettings = { durationMs: settings.durationMs, drainMs: settings.drainMs, bodyBytes: settings.bodyBytes };
  const stepAt = (scenario: ScenarioName, rate: number) => ({ scenario, rate, ...stepSettings, tag: nextTag() });

  // 1. Capacity at the SLO, per scenario and system: a ramp, then bisection. A miss leaves a backlog: let it clear.
  const capacities = new Map<string, CapacityResult>();
  for (const scenario of loadScenarios) {
    for (const name of systemNames) {
      await quiesce(everyServer, settle);
      const session = await Session.open(systems[name], population, everyone);
      let result: CapacityResult;
      try {
        result = await searchCapacity(
          session,
          scenario,
          {
            ramp: settings.ramp,
            bisections: settings.bisect,
            settings: stepSettings,
            nextTag,
            beforeStep: () => quiesce(serverGroups(systems[name]), settle),
          },
          (point, step) => {
            results.steps.push({ ...step, label: `capacity ${point.rate}` });
            check(step, `capacity ${point.rate}`);
            say(
              `capacity ${scenario} ${name} ${point.rate}/s: p99 ${fmt(point.p99)} ms, delivered ${fmt(point.deliveredFraction * 100)}%, reconnects ${step.reconnects}, ended slow ${step.endedSlow}${point.miss ? ` (misses the SLO: ${point.miss})` : ""}${loadgenNote(step)}`,
            );
          },
        );
      } finally {
        await session.close();
      }
      capacities.set(`${name} ${scenario}`, result);
      results.ramps.push({
        ...result,
        system: name,
        scenario,
        points: [...result.points].sort((a, b) => a.rate - b.rate),
        sustained: result.capacity,
      });
      say(`capacity ${scenario} ${name}: ${result.lowerBound ? "at least " : ""}${result.capacity} msg/s`);
    }
  }

  // 2. A rate both sustain (a third of the lower capacity, or --rate), the systems alternated round by round:
  //    p99 and server CPU per delivery are compared there.
  for (const scenario of loadScenarios) {
    const lower = Math.min(...systemNames.map((n) => capacities.get(`${n} ${scenario}`)?.capacity ?? 0));
    const rate = settings.sharedRate ?? Math.max(1, Math.round(lower / 3));
    results.sharedRates[scenario] = rate;
    for (let round = 1; round <= settings.rounds; round++) {
      for (const name of systemNames) {
        await quiesce(everyServer, settle);
        const session = await Session.open(systems[name], population, everyone);
        try {
          const step = await session.run(stepAt(scenario, rate));
          results.steps.push({ ...step, label: `round ${round}` });
          check(step, `round ${round}`);
          say(
            `round ${round} ${name} ${scenario} at ${rate}/s: p99 ${fmt(step.counts.latency.p99)} ms, ${fmt(step.cpuSecondsPer1000, 3)} server CPU-s per 1000 deliveries, lost ${step.counts.lost}, dup ${step.counts.duplicates}${loadgenNote(step)}`,
          );
        } finally {
          await session.close();
        }
      }
    }
  }

  // 3. Overload: fanout offered at twice each system's capacity; what is delivered within the window, and
  //    the reconnects and streams ended for slowness it causes. A long drain: late is not lost.
  for (const name of loadScenarios.includes("fanout") ? systemNames : []) {
    const capacity = capacities.get(`${name} fanout`)?.capacity ?? 0;
    if (capacity === 0) continue;
    await quiesce(everyServer, settle * 4);
    const session = await Session.open(systems[name], population, everyone);
    try {
      const step = await session.run({ ...stepAt("fanout", capacity * 2), drainMs: settings.overloadDrainMs });
      results.steps.push({ ...step, label: "overload 2x" });
      check(step, "overload 2x");
      say(
        `overload ${name}: offered ${capacity * 2} msg/s (twice its capacity), ${fmt(step.deliveriesPerSec, 0)} deliveries/s within the window, reconnects ${step.reconnects}, ended slow ${step.endedSlow}${loadgenNote(step)}`,
      );
    } finally {
      await session.close();
    }
  }

  // 4. Memory: one server of its own per system, idle and with many idle connections.
  if (scenarios.has("memory")) {
    await quiesce(everyServer, settle);
    const levels = settings.memoryStreams;
    results.memory = [];
    type MemoryRun = { system: SystemName; connections: "own" | "shared" };
    // Parley also with the streams sharing 4 connections (one per load-generator process), as behind Envoy.
    const runs = systemNames.flatMap((system): MemoryRun[] =>
      system === "parley"
        ? [
            { system, connections: "own" },
            { system, connections: "shared" },
          ]
        : [{ system, connections: "own" }],
    );
    for (const run of runs) {
      results.memory.push(await runMemory(infra, { ...run, levels, users: settings.memoryUsers, workers: 4, tag: nextTag() }, say));
    }
  }

  // 5. Resume after SIGTERM: many Parley clients first (the drained pod is started again), then both systems.
  if (scenarios.has("resume") && systemNames.includes("parley") && settings.resumeClients > 0) {
    await quiesce(everyServer, settle);
    const clients = settings.resumeClients;
    const scale = { clients, users: Math.max(2, Math.ceil(clients / 10)), workers: 4, rate: 5, leadMs: 1_000, tailMs: 1_000, maxMs: 20_000 };
    const r = await runResumeAtScale(infra, { ...scale, drainMs: settings.drainMs, bodyBytes: settings.bodyBytes, tag: nextTag() }, say);
    results.resumeScale = r;
    if (r.lost > 0 || r.duplicates > 0 || r.resumed < r.live) {
      results.problems.push(`parley resume at scale: ${r.resumed}/${r.live} resumed, lost ${r.lost}, duplicated ${r.duplicates}`);
    }
    say(`resume at scale: ${r.resumed}/${r.live} back within ${fmt(r.resumeMsMax, 0)} ms, lost ${r.lost}, dup ${r.duplicates}`);
  }
  // Both systems, a few receivers; it runs last, so the stopped backend is not started again.
  for (const name of scenarios.has("resume") ? systemNames : []) {
    await quiesce(everyServer);
    const result = await runResume(systems[name], population, {
      rate: settings.resumeRate,
      leadMs: 1_000,
      tailMs: 1_000,
      maxMs: 20_000,
      drainMs: settings.drainMs,
      bodyBytes: settings.bodyBytes,
      tag: nextTag(),
    });
    results.resumes.push(result);
    if (name === "parley" && (result.lost > 0 || result.duplicates > 0 || result.resumed < result.receivers)) {
      results.problems.push(
        `parley resume: ${result.resumed}/${result.receivers} resumed, lost ${result.lost}, duplicated ${result.duplicates} (${result.acked} messages acknowledged)`,
      );
    }
    say(
      `resume ${name}: ${result.resumed}/${result.receivers} back within ${fmt(result.resumeMsMax, 0)} ms, lost ${result.lost}, dup ${result.duplicates}`,
    );
  }
}

let code = 0;
let report = "";
try {
  await main();
  const files = writeResults(join(ROOT, ".bench"), results);
  report = renderReport(results, files, elapsed());
} catch (err) {
  process.stderr.write(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  code = 1;
} finally {
  if (!exiting) {
    exiting = true;
    say("stopping every server, Redis and Postgres");
    await cleanupAll();
  }
}
clearTimeout(limit);
// Printed after the cleanup, so that the ratio line is the last thing on stdout.
if (report) process.stdout.write(`${report}\n`);
process.exit(code);
