// The CPU and RSS sampler, in a process of its own: scanning /proc and
// reading Postgres memory maps every 500 ms inside the load generator would
// stall its event loop and bill the delay to the systems under test. The
// benchmark forks this script once per session and talks to it over IPC:
// `begin` with the groups to measure, `end` for their usage over the window.
// It exits when the benchmark goes away (the IPC channel closes).
import { ProcSampler, type ProcGroup } from "./procstat.js";
import type { SamplerReply, SamplerRequest } from "./sampler-process.js";

const send = (reply: SamplerReply) => process.send?.(reply);
let sampler: ProcSampler | undefined;
let cpuAtBegin = process.cpuUsage();
let begunAt = 0;

process.on("message", (request: SamplerRequest) => {
  if (request.type === "begin") {
    const groups: ProcGroup[] = request.groups.map((g) => ({ ...g, pids: () => g.pids }));
    sampler = new ProcSampler(groups, request.intervalMs);
    cpuAtBegin = process.cpuUsage();
    begunAt = performance.now();
    sampler.begin();
    send({ type: "begun" });
  } else if (request.type === "end") {
    const procs = sampler?.end() ?? [];
    sampler = undefined;
    // The sampler's own cost, so that it shows if it ever competes with what it measures.
    const used = process.cpuUsage(cpuAtBegin);
    const seconds = (performance.now() - begunAt) / 1000;
    const rss = process.memoryUsage.rss();
    procs.push({ name: "sampler", cpuPercent: ((used.user + used.system) / 1e6 / seconds) * 100, rssBytes: rss, peakRssBytes: rss });
    send({ type: "usage", procs });
  }
});
process.on("disconnect", () => process.exit(0));
send({ type: "ready" });
