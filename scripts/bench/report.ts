// What the benchmark prints and writes: aligned tables, the JSON result and
// an SVG chart of p99 latency against offered load.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import type { CapacityResult } from "./capacity.js";
import type { MemoryResult } from "./memory.js";
import type { ResumeResult } from "./resume.js";
import type { ResumeScaleResult } from "./resume-scale.js";
import { memoryLines, resumeScaleLines } from "./scale-report.js";
import { LOADGEN_SATURATED_PERCENT, SLO_DELIVERED, SLO_P99_MS, type StepResult } from "./session.js";
import { describePinning, type Pinning } from "./pinning.js";
import { describeDurability, type PostgresDurability } from "./setup.js";
import { median } from "./stats.js";
import type { ScenarioName, SystemName } from "./workload.js";

const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : value === Infinity ? "never" : "n/a");
const mb = (bytes: number) => fmt(bytes / 1024 / 1024, 0);
/** Mean RSS growth per connection over the backends; below zero, garbage collection outweighed it. */
const perConnKb = (values: number[]) => {
  if (values.length === 0) return "n/a";
  const mean = values.reduce((a, b) => a + b, 0) / values.length / 1024;
  return mean < 0 ? "<0 (gc)" : fmt(mean, 0);
};

/** Right-aligned columns under a header, with a rule. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export interface LabelledStep extends StepResult {
  label: string;
}

export function stepTable(steps: LabelledStep[]): string {
  return table(
    [
      "run",
      "system",
      "scenario",
      "conns",
      "offered/s",
      "sends/s",
      "deliv/s",
      "deliv%",
      "p50ms",
      "p95ms",
      "p99ms",
      "p99.9ms",
      "ack p50/p99",
      "lost",
      "dup",
      "unacked",
      "reconn",
      "slowEnd",
      "srvCPU%",
      "rssMB",
      "rss/connKB",
      "genCPU%",
      "valid",
    ],
    steps.map((s) => {
      const backends = s.procs.filter((p) => s.rssPerConnection.some((r) => r.name === p.name));
      const perConn = s.rssPerConnection.map((r) => r.bytes).filter(Number.isFinite);
      return [
        s.label,
        s.system,
        s.scenario,
        String(s.connections),
        fmt(s.rate, 0),
        fmt(s.sendsPerSec, 0),
        fmt(s.deliveriesPerSec, 0),
        fmt(s.deliveredFraction * 100, 1),
        fmt(s.counts.latency.p50, 1),
        fmt(s.counts.latency.p95, 1),
        fmt(s.counts.latency.p99, 1),
        fmt(s.counts.latency.p999, 1),
        `${fmt(s.counts.ackLatency.p50, 1)}/${fmt(s.counts.ackLatency.p99, 1)}`,
        String(s.counts.lost),
        String(s.counts.duplicates),
        String(s.counts.unacked),
        String(s.reconnects),
        String(s.endedSlow),
        fmt(s.serverCpuPercent, 0),
        mb(backends.reduce((sum, p) => sum + p.rssBytes, 0)),
        perConnKb(perConn),
        fmt(s.loadgenCpuPercent, 0),
        s.invalid ? "NO" : "yes",
      ];
    }),
  );
}

/** CPU % of each process group, per step: where the time goes. */
export function cpuTable(steps: LabelledStep[]): string {
  const names = [...new Set(steps.flatMap((s) => s.procs.map((p) => p.name)))];
  return table(
    ["run", "system", ...names.map((n) => `${n} CPU%/RSS MB`)],
    steps.map((s) => [
      s.label,
      s.system,
      ...names.map((n) => {
        const p = s.procs.find((x) => x.name === n);
        return p ? `${fmt(p.cpuPercent, 0)}/${mb(p.rssBytes)}` : "";
      }),
    ]),
  );
}

export function resumeTable(results: ResumeResult[]): string {
  return table(
    [
      "system",
      "receivers",
      "resumed",
      "resumed on",
      "resume p50 ms",
      "resume max ms",
      "all received ms",
      "exit ms",
      "sent",
      "during outage",
      "lost",
      "dup",
      "unacked",
    ],
    results.map((r) => [
      r.system,
      String(r.receivers),
      String(r.resumed),
      Object.entries(r.resumedOn)
        .map(([k, v]) => `${k}:${v}`)
        .join(" ") || "-",
      fmt(r.resumeMsP50, 0),
      fmt(r.resumeMsMax, 0),
      fmt(r.allReceivedMs, 0),
      fmt(r.exitMs, 0),
      String(r.sent),
      String(r.sentDuringOutage),
      String(r.lost),
      String(r.duplicates),
      String(r.unacked),
    ]),
  );
}

/** One capacity search, its points sorted by rate (saturated: missed the SLO; invalid: the load generator saturated). */
export interface RampSeries extends CapacityResult {
  system: SystemName;
  scenario: ScenarioName;
  /** The capacity, under the name the chart's legend uses. */
  sustained: number;
}

const COLORS: Record<SystemName, string> = { parley: "#1f77b4", socketio: "#d62728" };

/**
 * p99 latency (log scale) against offered messages per second (log scale),
 * one panel per scenario, one line per system; saturated steps are hollow.
 */
export function rampSvg(series: RampSeries[], title: string): string {
  const scenarios = [...new Set(series.map((s) => s.scenario))];
  const panelW = 560;
  const panelH = 320;
  const margin = { left: 64, right: 16, top: 56, bottom: 52 };
  const width = scenarios.length * panelW;
  const height = panelH + margin.top + 30;
  const esc = (t: string) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15">${esc(title)}</text>`,
  ];
  scenarios.forEach((scenario, i) => {
    const lines = series.filter((s) => s.scenario === scenario);
    const points = lines.flatMap((l) => l.points).filter((p) => Number.isFinite(p.p99) && p.p99 > 0);
    if (points.length === 0) return;
    const x0 = i * panelW + margin.left;
    const x1 = (i + 1) * panelW - margin.right;
    const y0 = margin.top;
    const y1 = margin.top + panelH - margin.bottom;
    const logRange = (values: number[]) => {
      const lo = Math.floor(Math.log10(Math.min(...values)));
      const hi = Math.ceil(Math.log10(Math.max(...values)));
      return [lo, hi === lo ? lo + 1 : hi];
    };
    const [xLo, xHi] = logRange(points.map((p) => p.rate));
    const [yLo, yHi] = logRange(points.map((p) => p.p99));
    const sx = (v: number) => Math.round((x0 + ((Math.log10(v) - xLo) / (xHi - xLo)) * (x1 - x0)) * 10) / 10;
    const sy = (v: number) => Math.round((y1 - ((Math.log10(v) - yLo) / (yHi - yLo)) * (y1 - y0)) * 10) / 10;
    parts.push(`<text x="${(x0 + x1) / 2}" y="${y0 - 10}" text-anchor="middle" font-size="13">${esc(scenario)}</text>`);
    parts.push(`<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" fill="none" stroke="#999"/>`);
    for (let e = xLo; e <= xHi; e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v < 10 ** xLo || v > 10 ** xHi) continue;
        parts.push(`<line x1="${sx(v)}" y1="${y0}" x2="${sx(v)}" y2="${y1}" stroke="#eee"/>`);
        parts.push(`<text x="${sx(v)}" y="${y1 + 16}" text-anchor="middle">${v}</text>`);
      }
    }
    for (let e = yLo; e <= yHi; e++) {
      const v = 10 ** e;
      parts.push(`<line x1="${x0}" y1="${sy(v)}" x2="${x1}" y2="${sy(v)}" stroke="#eee"/>`);
      parts.push(`<text x="${x0 - 6}" y="${sy(v) + 4}" text-anchor="end">${v >= 1 ? v : v.toFixed(-e)}</text>`);
    }
    parts.push(`<text x="${(x0 + x1) / 2}" y="${y1 + 36}" text-anchor="middle">offered load (messages/s)</text>`);
    parts.push(`<text transform="translate(${x0 - 46},${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">p99 latency (ms)</text>`);
    lines.forEach((line, j) => {
      const pts = line.points.filter((p) => Number.isFinite(p.p99) && p.p99 > 0);
      const color = COLORS[line.system];
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${sx(p.rate)},${sy(p.p99)}`).join(" ")}"/>`);
      for (const p of pts) {
        parts.push(`<circle cx="${sx(p.rate)}" cy="${sy(p.p99)}" r="4" fill="${p.saturated ? "white" : color}" stroke="${color}" stroke-width="2"/>`);
      }
      parts.push(`<rect x="${x0 + 10}" y="${y0 + 10 + j * 18}" width="12" height="12" fill="${color}"/>`);
      parts.push(`<text x="${x0 + 28}" y="${y0 + 20 + j * 18}">${esc(line.system)} (sustained ${line.sustained || "-"} msg/s)</text>`);
    });
  });
  parts.push(
    `<text x="8" y="${height - 6}" font-size="11" fill="#555">hollow: missed the SLO (p99 over ${SLO_P99_MS} ms, under ${SLO_DELIVERED * 100}% delivered within the window, or a stream ended as slow); both axes logarithmic</text>`,
  );
  parts.push("</svg>");
  return parts.join("\n");
}

export { fmt };

export interface BenchResults {
  runId: string;
  settings: object;
  systems: SystemName[];
  /** The Postgres durability the run used, as Postgres reported it; unset until it has started. */
  postgres?: PostgresDurability;
  /** `--pin`: the CPUs of the servers and of the load generator; unset when not pinned. */
  pinning?: Pinning;
  /** Load scenarios in the order they ran; the first is the headline of the ratio line. */
  loadScenarios: ScenarioName[];
  steps: LabelledStep[];
  ramps: RampSeries[];
  /** Per load scenario, the rate both systems were compared at (a third of the lower capacity unless given). */
  sharedRates: Partial<Record<ScenarioName, number>>;
  resumes: ResumeResult[];
  /** The memory scenario's servers (one per system), and the resume of many clients, when they ran. */
  memory?: MemoryResult[];
  resumeScale?: ResumeScaleResult;
  /** Loss or duplicates seen, with the run they were seen in. */
  problems: string[];
}

/** The medians of the alternated rounds, per system, for one scenario. */
function roundMedians(steps: LabelledStep[], system: SystemName, scenario: ScenarioName) {
  const rounds = steps.filter((s) => s.system === system && s.scenario === scenario && s.label.startsWith("round"));
  if (rounds.length === 0) return undefined;
  const of = (pick: (s: LabelledStep) => number) => median(rounds.map(pick));
  return {
    rounds,
    deliveries: of((s) => s.deliveriesPerSec),
    p50: of((s) => s.counts.latency.p50),
    p99: of((s) => s.counts.latency.p99),
    cpu: of((s) => s.serverCpuPercent),
    cpuPer1000: of((s) => s.cpuSecondsPer1000),
    rssPerConnection: of((s) => s.rssPerConnection.reduce((sum, r) => sum + r.bytes, 0) / s.rssPerConnection.length),
    lost: rounds.reduce((n, s) => n + s.counts.lost, 0),
    duplicates: rounds.reduce((n, s) => n + s.counts.duplicates, 0),
  };
}

/** The printed report; its last line is the ratio line. */
export function renderReport(results: BenchResults, files: string[], took: string): string {
  const { steps, ramps, resumes, problems, systems, loadScenarios } = results;
  const out: string[] = [""];
  if (steps.length > 0) {
    out.push("Runs (latency: intended send time → first delivery, open loop; deliveries/s and sends/s inside the window;");
    out.push("ack: intended send time → acknowledgement; rssMB: the backends' RSS; rss/connKB: their RSS growth per connection");
    out.push("when the round connected, rough because garbage collection moves RSS too):");
    out.push(`genCPU%: the load generator's own CPU; valid NO: it used ≥ ${LOADGEN_SATURATED_PERCENT}% of a core, so it measured itself.`);
    out.push(stepTable(steps), "", "CPU % (of one core) and RSS per process group during each window (Postgres: PSS of all its processes):");
    out.push(cpuTable(steps), "");
  }
  const rows: string[][] = [];
  for (const system of systems) {
    for (const scenario of loadScenarios) {
      const m = roundMedians(steps, system, scenario);
      if (!m) continue;
      rows.push([
        system,
        scenario,
        String(m.rounds.length),
        fmt(m.rounds[0].rate, 0),
        fmt(m.deliveries, 0),
        fmt(m.p50),
        fmt(m.p99),
        fmt(m.cpu, 0),
        fmt(m.cpuPer1000, 3),
        perConnKb([m.rssPerConnection]),
        String(m.lost),
        String(m.duplicates),
      ]);
    }
  }
  if (rows.length > 0) {
    out.push("At the shared rate (a third of the lower capacity, both keep up), medians over the alternated rounds;");
    out.push("cpuS/1000: server CPU-seconds per 1000 deliveries (Parley: pods, Postgres, Redis; Socket.IO: servers, Redis):");
    out.push(
      table(["system", "scenario", "rounds", "offered/s", "deliv/s", "p50ms", "p99ms", "srvCPU%", "cpuS/1000", "rss/connKB", "lost", "dup"], rows),
      "",
    );
  }
  if (ramps.length > 0) {
    out.push(`Capacity: highest offered rate with p99 ≤ ${SLO_P99_MS} ms, ≥ ${SLO_DELIVERED * 100}% delivered within the window and no stream`);
    out.push("ended as slow; a ramp, then bisection (≥: no rate tried missed; * = missed the SLO; ! = load generator saturated):");
    out.push(
      table(
        ["system", "scenario", "capacity msg/s", "deliv/s there", "rate:p99 per step"],
        ramps.map((r) => [
          r.system,
          r.scenario,
          `${r.lowerBound ? "≥" : ""}${r.capacity}`,
          fmt(r.deliveriesPerSec, 0),
          r.points.map((p) => `${p.rate}:${fmt(p.p99, 0)}ms${p.saturated ? "*" : ""}${p.invalid ? "!" : ""}`).join(" "),
        ]),
      ),
      "",
    );
  }
  const latencies = latencyRows(results);
  if (latencies.length > 0) {
    out.push("Latency at three loads (intended send time → first delivery): the shared rate (median round), capacity, twice capacity:");
    out.push(table(["system", "scenario", "load", "offered/s", "deliv/s", "p50ms", "p99ms", "p99.9ms"], latencies), "");
  }
  const overloads = steps.filter((s) => s.label.startsWith("overload"));
  if (overloads.length > 0) {
    out.push("Overload: fanout offered at twice each system's capacity (goodput: deliveries/s within the window ÷ its capacity's):");
    out.push(
      table(
        ["system", "offered/s", "deliv/s", "goodput%", "p99ms", "lost", "unacked", "reconnects", "ended slow"],
        overloads.map((s) => [
          s.system,
          fmt(s.rate, 0),
          fmt(s.deliveriesPerSec, 0),
          fmt(goodput(ramps, s), 0),
          fmt(s.counts.latency.p99, 0),
          String(s.counts.lost),
          String(s.counts.unacked),
          String(s.reconnects),
          String(s.endedSlow),
        ]),
      ),
      "(Socket.IO never ends a connection for reading slowly: it buffers without bound.)",
      "",
    );
  }
  if (results.memory?.length) out.push(...memoryLines(results.memory));
  if (results.resumeScale) out.push(...resumeScaleLines(results.resumeScale));
  if (resumes.length > 0) {
    out.push("Resume: backend 1 gets SIGTERM while a sender on backend 2 keeps sending to the receivers' group:", resumeTable(resumes));
    out.push("(Socket.IO has no resume: its Redis adapter does not support connection state recovery and nothing is stored,");
    out.push("so whatever is sent while a client is away is lost by design; its lost count here is expected, not a bug.)", "");
  }
  out.push("Parley persists every message to Postgres (committed before the ack: durable, gap-free, resumable);");
  out.push("Socket.IO persists nothing (its ack only means the server emitted the message).");
  if (results.postgres) out.push(`${describeDurability(results.postgres)}.`);
  out.push(`${describePinning(results.pinning)}.`);
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  out.push(
    `Machine: ${cpus().length} cores, load average now ${load} (shared with other work: absolute figures are skewed; alternating shares the noise).`,
  );
  const invalid = steps.filter((s) => s.invalid);
  if (invalid.length > 0) {
    out.push(
      `INVALID RUNS: the load generator saturated (≥ ${LOADGEN_SATURATED_PERCENT}% of one core) in ${invalid.length} of ${steps.length}; their figures measure the harness, not the servers:`,
      ...invalid.map((s) => `  - ${s.label} ${s.system} ${s.scenario}: load generator ${fmt(s.loadgenCpuPercent, 0)}% CPU`),
    );
  } else if (steps.length > 0) {
    out.push(
      `Load generator below ${LOADGEN_SATURATED_PERCENT}% of one core in every run (highest ${fmt(Math.max(...steps.map((s) => s.loadgenCpuPercent)), 0)}%).`,
    );
  }
  if (problems.length > 0) out.push("", "CORRECTNESS PROBLEMS (loss or duplicates):", ...problems.map((p) => `  - ${p}`), "");
  else out.push("No loss and no duplicates in any load run.");
  for (const file of files) out.push(`Wrote ${file}`);
  out.push(`Took ${took}.`);

  const ratio = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : "n/a";
  const capacity = (system: SystemName, scenario: ScenarioName) => ramps.find((r) => r.system === system && r.scenario === scenario);
  const capacityRatio = (scenario: ScenarioName) => {
    const [p, s] = [capacity("parley", scenario), capacity("socketio", scenario)];
    const bound = p?.lowerBound || s?.lowerBound ? " (a bound: a search never missed)" : "";
    return { value: ratio(p?.deliveriesPerSec, s?.deliveriesPerSec), bound };
  };
  const shared = (system: SystemName) => roundMedians(steps, system, "fanout");
  const parleyOverload = overloads.find((s) => s.system === "parley");
  const g = parleyOverload ? goodput(ramps, parleyOverload) : NaN;
  const r1 = capacityRatio("fanout");
  const r3 = capacityRatio("dm");
  out.push(
    `(R1, R3: deliveries/s at each system's capacity, fanout and dm${r1.bound || r3.bound}; R2, R4: fanout at the shared rate ${results.sharedRates.fanout ?? "n/a"} msg/s;`,
    " G: Parley's deliveries/s offered twice its fanout capacity ÷ those at its capacity)",
  );
  out.push(
    `parley/socketio: capacity ratio ${r3.value}, server CPU per delivery ratio ${ratio(shared("parley")?.cpuPer1000, shared("socketio")?.cpuPer1000)}, overload goodput ${Number.isFinite(g) ? g.toFixed(0) : "n/a"}%`,
  );
  out.push(`parley/socketio: deliveries/s ratio ${r1.value}, p99 latency ratio ${ratio(shared("parley")?.p99, shared("socketio")?.p99)}`);
  return out.join("\n");
}

/** Per system and scenario, the step at the shared rate (the median round by p99), at capacity and at twice capacity, where they ran. */
function latencyRows({ steps, ramps, systems, loadScenarios }: BenchResults): string[][] {
  const rows: string[][] = [];
  for (const system of systems) {
    for (const scenario of loadScenarios) {
      const of = (label: (s: LabelledStep) => boolean) => steps.filter((s) => s.system === system && s.scenario === scenario && label(s));
      const rounds = of((s) => s.label.startsWith("round")).sort((a, b) => a.counts.latency.p99 - b.counts.latency.p99);
      const capacity = ramps.find((r) => r.system === system && r.scenario === scenario)?.capacity;
      const loads: [string, LabelledStep | undefined][] = [
        ["shared", rounds[Math.floor(rounds.length / 2)]],
        ["capacity", of((s) => s.label === `capacity ${capacity}`).at(-1)],
        ["2x capacity", of((s) => s.label.startsWith("overload")).at(-1)],
      ];
      for (const [load, s] of loads) {
        if (s === undefined) continue;
        const { p50, p99, p999 } = s.counts.latency;
        rows.push([system, scenario, load, fmt(s.rate, 0), fmt(s.deliveriesPerSec, 0), fmt(p50, 1), fmt(p99, 1), fmt(p999, 1)]);
      }
    }
  }
  return rows;
}

/** Deliveries/s of an overload step as a percentage of those its system's fanout capacity asks for. */
function goodput(ramps: RampSeries[], step: StepResult): number {
  const capacity = ramps.find((r) => r.system === step.system && r.scenario === "fanout")?.capacity ?? 0;
  return capacity > 0 ? (step.deliveriesPerSec / (capacity * step.recipientsPerMessage)) * 100 : NaN;
}

/** Writes the JSON result (always) and the SVG chart (when a ramp ran) to `dir`; returns their paths. */
export function writeResults(dir: string, results: BenchResults): string[] {
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const jsonPath = join(dir, `bench-${stamp}.json`);
  const machine = { cores: cpus().length, loadavg: loadavg(), node: process.version };
  writeFileSync(jsonPath, `${JSON.stringify({ ...results, machine }, null, 2)}\n`);
  const files = [jsonPath];
  if (results.ramps.length > 0) {
    const svgPath = join(dir, `p99-vs-load-${stamp}.svg`);
    writeFileSync(svgPath, rampSvg(results.ramps, "p99 latency against offered load: Parley vs Socket.IO (Redis adapter)"));
    files.push(svgPath);
  }
  return files;
}
