// The scale scenarios' part of the printed report (scripts/bench/report.ts):
// memory per idle stream, and the resume of many clients from a drained pod.
import type { MemoryResult } from "./memory.js";
import { fmt, table } from "./report.js";
import type { ResumeScaleResult } from "./resume-scale.js";

const MB = 2 ** 20;

/** Each system's idle server and each connection count: RSS, the V8 heap and what lies outside it, and the cost per connection. */
export function memoryLines(results: MemoryResult[]): string[] {
  const limits = results.map((m) => `${m.system}: open-files limit ${m.fdLimit}${m.firstError ? `, first failure: ${m.firstError}` : ""}`);
  return [
    "Memory: one server of its own (Parley: a chat pod in cluster mode; Socket.IO: a server on the same Redis; both the",
    "production build) after a full garbage collection, idle and with N idle connections (Parley: Connect streams, each on",
    "its own HTTP/2 connection, and `shared`: all of them on 4 connections, as behind Envoy; Socket.IO: WebSocket sockets);",
    "per connection or stream: (RSS at N − idle RSS) ÷ N",
    "(targets: idle pod ≤ 100 MB, ≤ 20 KB a stream):",
    table(
      ["system", "N", "live/failed", "RSS MB", "heap MB", "external MB", "fds", "KB/conn", "heap KB/conn", "open s"],
      results.flatMap(memoryRows),
    ),
    `(${limits.join("; ")})`,
    "",
  ];
}

function memoryRows(memory: MemoryResult): string[][] {
  const { idle } = memory;
  const system = memory.connections === "shared" ? `${memory.system} shared` : memory.system;
  return [
    [system, "idle", "-", fmt(idle.rss / MB), fmt(idle.heapUsed / MB), fmt(idle.external / MB), String(memory.idleFds), "-", "-", "-"],
    ...memory.levels.map((l) => [
      system,
      String(l.streams),
      `${l.live}/${l.failed}`,
      fmt(l.split.rss / MB),
      fmt(l.split.heapUsed / MB),
      fmt(l.split.external / MB),
      String(l.fds),
      fmt(l.perStreamBytes / 1024),
      fmt(l.heapPerStreamBytes / 1024),
      fmt(l.openMs / 1000),
    ]),
  ];
}

/** Time until every client of the drained pod was live again on the other, and what they lost or got twice. */
export function resumeScaleLines(r: ResumeScaleResult): string[] {
  return [
    `Resume at scale (Parley): ${r.clients} clients of ${r.users} users on pod 1, which gets SIGTERM and drains; each moves to pod 2`,
    "and resumes from its cursors (target: all resumed in < 5 s, nothing lost):",
    table(
      ["clients", "live", "resumed", "resumed on", "resume p50 ms", "resume max ms", "exit ms", "sent", "acked", "during outage", "lost", "dup"],
      [
        [
          String(r.clients),
          String(r.live),
          String(r.resumed),
          Object.entries(r.resumedOn)
            .map(([k, v]) => `${k}:${v}`)
            .join(" "),
          fmt(r.resumeMsP50, 0),
          fmt(r.resumeMsMax, 0),
          fmt(r.exitMs, 0),
          String(r.sent),
          String(r.acked),
          String(r.sentDuringOutage),
          String(r.lost),
          String(r.duplicates),
        ],
      ],
    ),
    `(per client: drain → ready on the new pod p50 ${fmt(r.drainToReadyMsP50, 0)} ms, max ${fmt(r.drainToReadyMsMax, 0)} ms; ready → caught up p50 ${fmt(r.readyToCaughtUpMsP50, 0)} ms, max ${fmt(r.readyToCaughtUpMsMax, 0)} ms;`,
    ` load-generator processes' CPU meanwhile ${r.workerCpuPercent.map((c) => `${fmt(c, 0)}%`).join(" ")} of a core each; presence frames received since the drain ${r.presenceFrames};`,
    " lost: (client, acknowledged message) pairs never delivered; dup: after the client's own de-duplication by seq)",
    "",
  ];
}
