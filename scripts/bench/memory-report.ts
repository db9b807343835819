// The memory scenario's part of the printed report (scripts/bench/report.ts).
import type { MemoryResult } from "./memory.js";
import { fmt, table } from "./report.js";

const MB = 2 ** 20;

/** The idle pod and each stream count: RSS, the V8 heap and what lies outside it, and the cost per stream. */
export function memoryLines(memory: MemoryResult): string[] {
  const { idle } = memory;
  const rows = [
    ["idle", "0", "-", fmt(idle.rss / MB), fmt(idle.heapUsed / MB), fmt(idle.external / MB), String(memory.idleFds), "-", "-", "-"],
    ...memory.levels.map((l) => [
      "streams",
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
  return [
    "Memory: one chat pod (cluster mode, the production build) after a full garbage collection, idle and with N idle",
    "Connect streams, each on its own HTTP/2 connection; per stream: (RSS at N − idle RSS) ÷ N (targets: idle ≤ 100 MB, ≤ 20 KB a stream):",
    table(["state", "N", "live/failed", "RSS MB", "heap MB", "external MB", "fds", "KB/stream", "heap KB/stream", "open s"], rows),
    `(open-files limit ${memory.fdLimit}${memory.firstError ? `; first failure: ${memory.firstError}` : ""})`,
    "",
  ];
}
