// CPU time and resident memory of the processes under test, read from
// /proc/<pid>/stat (utime + stime, in clock ticks) and /proc/<pid>/status
// (VmRSS). Linux only; elsewhere every reading is undefined.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcReading {
  /** utime + stime, in seconds. */
  cpuSeconds: number;
  /** VmRSS; with `proportional`, PSS instead (shared pages split between the processes that map them). */
  rssBytes: number;
}

/**
 * One process's CPU time and RSS now; undefined once it has gone. Summing
 * RSS over Postgres backends would count shared_buffers once per backend, so
 * groups of processes that share memory ask for PSS (`proportional`).
 */
export function readProc(pid: number, proportional = false): ProcReading | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of stat(5)
    const rssKb = proportional
      ? Number(/^Pss:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0)
      : Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    return { cpuSeconds: ticks / CLK_TCK, rssBytes: rssKb * 1024 };
  } catch {
    return undefined;
  }
}

/** The direct children of `pid` (Postgres backends of a postmaster). Scans /proc once. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return children;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** A named group of processes measured together, e.g. "pod-1" or "postgres" (postmaster plus backends). */
export interface ProcGroup {
  name: string;
  /** The pids to sum now; called at each sample, so a group may change (a restarted backend). */
  pids(): number[];
  /** Also sum the direct children of those pids, found afresh at each sample (Postgres backends of the postmaster). */
  withChildren?: boolean;
  /** Sum PSS rather than RSS: for processes that share memory (Postgres). */
  proportional?: boolean;
}

export interface ProcUsage {
  name: string;
  /** CPU over the window, in percent of one core (200 = both cores of this machine). */
  cpuPercent: number;
  /** RSS at the end of the window. */
  rssBytes: number;
  /** Highest RSS sampled during the window. */
  peakRssBytes: number;
}

/** Every pid of a group now: its pids, and their children when it asks for them. */
export function groupPids(group: ProcGroup): number[] {
  const pids = group.pids();
  return group.withChildren ? pids.flatMap((pid) => [pid, ...childrenOf(pid)]) : pids;
}

/**
 * Measures groups of processes over a window: CPU from the difference of
 * their CPU times, RSS sampled every `intervalMs` for the peak. A process
 * that appears mid-window (a new Postgres backend) counts from its start.
 */
export class ProcSampler {
  private readonly start = new Map<number, number>();
  private readonly peak = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;

  constructor(
    private readonly groups: ProcGroup[],
    private readonly intervalMs = 500,
  ) {}

  begin(): void {
    this.startedAt = performance.now();
    for (const group of this.groups) {
      for (const pid of groupPids(group)) {
        const reading = readProc(pid);
        if (reading) this.start.set(pid, reading.cpuSeconds);
      }
    }
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  end(): ProcUsage[] {
    clearInterval(this.timer);
    const seconds = (performance.now() - this.startedAt) / 1000;
    return this.groups.map((group) => {
      let cpu = 0;
      let rss = 0;
      for (const pid of groupPids(group)) {
        const reading = readProc(pid, group.proportional);
        if (!reading) continue;
        cpu += reading.cpuSeconds - (this.start.get(pid) ?? 0);
        rss += reading.rssBytes;
      }
      return {
        name: group.name,
        cpuPercent: seconds > 0 ? (cpu / seconds) * 100 : NaN,
        rssBytes: rss,
        peakRssBytes: Math.max(rss, this.peak.get(group.name) ?? 0),
      };
    });
  }

  private sample(): void {
    for (const group of this.groups) {
      let rss = 0;
      for (const pid of groupPids(group)) rss += readProc(pid, group.proportional)?.rssBytes ?? 0;
      this.peak.set(group.name, Math.max(rss, this.peak.get(group.name) ?? 0));
    }
  }
}

/** Total RSS of a group now. */
export function rssOf(group: ProcGroup): number {
  let rss = 0;
  for (const pid of groupPids(group)) rss += readProc(pid, group.proportional)?.rssBytes ?? 0;
  return rss;
}

/** Total CPU seconds of a group now. */
export function cpuOf(group: ProcGroup): number {
  let cpu = 0;
  for (const pid of groupPids(group)) cpu += readProc(pid)?.cpuSeconds ?? 0;
  return cpu;
}
