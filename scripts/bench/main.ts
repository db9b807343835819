// `npm run bench -- [--compare] [--quick] [--scenario fanout,dm,resume] ...`
//
// The same workload against Parley (2 pods, cluster mode, Postgres + Redis)
// and against Socket.IO with @socket.io/redis-adapter (2 servers, same Redis),
// on loopback, in one run. Open-loop load (sends scheduled by the clock), exact
// loss and duplicate counts, latency percentiles, CPU and RSS of every server
// process. --compare alternates the systems over several rounds and ends with
// the ratio line; a full run (no --quick) also ramps the offered load to find
// where each system saturates, and writes JSON and an SVG chart to .bench/.
import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ParleyDriver } from "./parley-driver.js";
import { cleanupAll, killAllNow } from "./processes.js";
import { cpuOf, type ProcGroup } from "./procstat.js";
import { fmt, renderReport, writeResults, type BenchResults, type RampSeries } from "./report.js";
import { runResume } from "./resume.js";
import { backendGroup, Session, sleep, type StepResult, type System } from "./session.js";
import { startInfra, type Backend } from "./setup.js";
import { SocketIoDriver } from "./socketio-driver.js";
import { buildPopulation, type ScenarioName, type SystemName } from "./workload.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const USAGE = `usage: npm run bench -- [options]
  --compare            alternate the systems over --rounds rounds and end with the ratio line (implied by a full run)
  --quick              short fixed-rate runs only (no ramp): under 3 minutes
  --scenario LIST      fanout,dm,resume or all (default all)
  --system NAME        parley, socketio or both (default both)
  --users N            virtual users, each with its own connection (quick 100, full 200)
  --group-size N       members per group in fanout (default 10)
  --rate N             offered messages/s for fanout (quick 200, full 400)
  --dm-rate N          offered messages/s for dm (default: --rate)
  --duration S         sending window per run, seconds (quick 4, full 10)
  --drain S            longest wait for late deliveries after the window (quick 3, full 5)
  --rounds N           rounds per system with --compare (quick 2, full 3)
  --ramp LIST          offered rates for the ramp (full run; default 100,200,400,800,1600,3200,6400)
  --resume-users N     receivers in the resume scenario (quick 10, full 50)
  --overload-rate N    fanout messages/s offered to find each system's throughput for the ratio line (default 8000)
  --resume-rate N      messages/s during the resume scenario (default 50)
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
    "dm-rate": { type: "string" },
    duration: { type: "string" },
    drain: { type: "string" },
    rounds: { type: "string" },
    ramp: { type: "string" },
    "resume-users": { type: "string" },
    "resume-rate": { type: "string" },
    "overload-rate": { type: "string" },
    "body-bytes": { type: "string" },
    "fast-postgres": { type: "boolean", default: false },
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
  rate: num("rate", 200, 400, 1, 100_000),
  dmRate: 0,
  durationMs: num("duration", 4, 10, 1, 600) * 1000,
  drainMs: num("drain", 3, 5, 0.5, 120) * 1000,
  rounds: compare ? num("rounds", 2, 3, 1, 20) : 1,
  resumeUsers: num("resume-users", 10, 50, 1, 1000),
  resumeRate: num("resume-rate", 50, 50, 1, 10_000),
  overloadRate: num("overload-rate", 8000, 8000, 1, 100_000),
  bodyBytes: num("body-bytes", 100, 100, 32, 4096),
  maxSeconds: num("max-seconds", 170, 3600, 10, 86_400),
  ramp: (values.ramp ?? "100,200,400,800,1600,3200,6400").split(",").map(Number),
};
settings.dmRate = values["dm-rate"] === undefined ? settings.rate : num("dm-rate", 0, 0, 1, 100_000);
if (settings.ramp.some((r) => !Number.isFinite(r) || r <= 0)) {
  process.stderr.write(`--ramp must be a comma list of positive rates\n`);
  process.exit(2);
}
const scenarios = new Set(values.scenario === "all" ? ["fanout", "dm", "resume"] : values.scenario.split(","));
for (const s of scenarios) {
  if (!["fanout", "dm", "resume"].includes(s)) {
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

/** Waits (at most `maxMs`) until the given processes are nearly idle, so one run's tail does not bill the next. */
async function quiesce(groups: ProcGroup[], maxMs = 3_000): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline) {
    const before = groups.reduce((sum, g) => sum + cpuOf(g), 0);
    await sleep(250);
    if (((groups.reduce((sum, g) => sum + cpuOf(g), 0) - before) / 0.25) * 100 < 15) return;
  }
}

const results: BenchResults = {
  runId,
  settings,
  systems: systemNames,
  loadScenarios,
  steps: [],
  ramps: [],
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
  const infra = await startInfra(say, { durable: !values["fast-postgres"] });
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
  for (const name of systemNames) await systems[name].driver.prepare(population);
  say(`${settings.users} users: ${population.groups.length} groups of ${settings.groupSize}, ${population.pairs.length} DM pairs`);

  const step = (scenario: ScenarioName, rate: number) => ({
    scenario,
    rate,
    durationMs: settings.durationMs,
    drainMs: settings.drainMs,
    bodyBytes: settings.bodyBytes,
    tag: nextTag(),
  });

  // 1. A fixed offered rate, the systems alternated round by round.
  for (let round = 1; round <= settings.rounds && loadScenarios.length > 0; round++) {
    for (const name of systemNames) {
      await quiesce(everyServer);
      const session = await Session.open(systems[name], population, everyone);
      try {
        for (const scenario of loadScenarios) {
          const result = await session.run(step(scenario, scenario === "fanout" ? settings.rate : settings.dmRate));
          results.steps.push({ ...result, label: `round ${round}` });
          check(result, `round ${round}`);
          const { latency, lost, duplicates } = result.counts;
          say(
            `round ${round} ${name} ${scenario}: ${fmt(result.deliveriesPerSec, 0)} deliveries/s, p99 ${fmt(latency.p99)} ms, lost ${lost}, dup ${duplicates}${loadgenNote(result)}`,
          );
          await quiesce(everyServer);
        }
      } finally {
        await session.close();
      }
    }
  }

  // 2. Throughput (with --compare): more fanout than either system can take, for a short window, alternated.
  //    What each delivers within the window is its capacity here: the deliveries/s of the ratio line.
  //    Latency is compared at the fixed rate above, where both keep up, never under overload.
  //    A quick run takes one round of it, to stay well under three minutes.
  const overloadRounds = quick ? 1 : settings.rounds;
  for (let round = 1; compare && loadScenarios.includes("fanout") && round <= overloadRounds; round++) {
    for (const name of systemNames) {
      await quiesce(everyServer, 20_000);
      const session = await Session.open(systems[name], population, everyone);
      try {
        // A long drain: under overload deliveries arrive late, and late is not lost; what is still missing after it is.
        const result = await session.run({
          ...step("fanout", settings.overloadRate),
          durationMs: Math.min(settings.durationMs, 4_000),
          drainMs: 20_000,
        });
        results.steps.push({ ...result, label: `overload ${round}` });
        check(result, `overload ${round}`);
        say(
          `overload ${round} ${name}: offered ${settings.overloadRate} msg/s, ${fmt(result.deliveriesPerSec, 0)} deliveries/s within the window${loadgenNote(result)}`,
        );
      } finally {
        await session.close();
      }
    }
  }

  // 3. The ramp (full runs): the offered rate goes up until a system saturates; systems alternate step by step.
  for (const scenario of quick ? [] : loadScenarios) {
    const series = new Map<SystemName, RampSeries>(systemNames.map((n) => [n, { system: n, scenario, points: [], sustained: 0 }]));
    const sessions = new Map<SystemName, Session>();
    try {
      for (const name of systemNames) sessions.set(name, await Session.open(systems[name], population, everyone));
      const baseline = new Map<SystemName, number>();
      for (const rate of settings.ramp) {
        for (const name of systemNames) {
          const session = sessions.get(name);
          if (session === undefined) continue;
          await quiesce(everyServer);
          const result = await session.run(step(scenario, rate));
          results.steps.push({ ...result, label: `ramp ${rate}` });
          check(result, `ramp ${rate}`);
          const p99 = result.counts.latency.p99;
          if (!baseline.has(name)) baseline.set(name, p99);
          const exploded = !Number.isFinite(p99) || p99 > Math.max(250, 10 * (baseline.get(name) as number));
          const saturated = result.deliveredFraction < 0.95 || exploded;
          const line = series.get(name) as RampSeries;
          line.points.push({ rate, p99, deliveredFraction: result.deliveredFraction, saturated, invalid: result.invalid });
          if (!saturated) line.sustained = rate;
          say(
            `ramp ${scenario} ${name} ${rate}/s: delivered ${fmt(result.deliveredFraction * 100)}%, p99 ${fmt(p99)} ms${saturated ? " (saturated)" : ""}${loadgenNote(result)}`,
          );
          if (saturated) {
            // This system is done: let go of its clients and let its backlog clear before the other goes on.
            sessions.delete(name);
            await session.close();
            await quiesce(serverGroups(systems[name]), 15_000);
          }
        }
      }
    } finally {
      for (const session of sessions.values()) await session.close();
    }
    results.ramps.push(...series.values());
  }

  // 4. Resume after SIGTERM. It runs last, so the stopped backend is not started again.
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
